/*
 * arccom_emu.c - an emulator of the C API of the Arcus2 "arccom" library (spec/devices.md, section 3.1 b),
 * so that kktbridge runs and is tested without an Ingenico terminal.
 *
 * Rules that hold in this file:
 *  - Only the public contract is emulated: keys in, keys out, response codes, the slip and cheq.out.
 *    The PC <-> terminal wire protocol is not public and is not invented here.
 *  - Every text that leaves the library (values, messages, the slip, cheq.out) is CP1251. The Cyrillic is
 *    written below as \x escapes of CP1251 bytes; the UTF-8 in comments is for readers only.
 *  - Operation codes are configurable in real installations (ops.ini). The default map is ONE table,
 *    DEFAULT_OPS, right below; the emu_ops setting replaces it.
 *  - One process-wide lock guards the handle registry, the keys of every handle and the operation store.
 *    ITPosRun never holds it while it waits, so Stop and ITPosGet from other threads get through.
 *
 * Exported (cdecl, C linkage): CreateITPos, DeleteITPos, ITPosSet, ITPosGet, ITPosRun, ITPosClear, Stop.
 *
 * Return values
 *  - ITPosRun returns 0 when the exchange took place: the outcome is then in response_code ("00" approved,
 *    a decline code, "17" cancelled or interrupted by Stop, "999" terminal does not answer). It returns a
 *    negative EMU_E_* code, with an explanation in text_message, when the request could not be run at all:
 *    bad handle, already running, unknown op code, missing or invalid amount/rrn/currency, bad emu_ setting,
 *    unreadable state file.
 *  - ITPosSet and ITPosClear return 0 or a negative EMU_E_* code.
 *  - ITPosGet(h, key, NULL, -1) (any size with buf NULL) returns the length needed including the NUL.
 *    With a buffer it returns 0 after copying the value and its NUL, EMU_E_SMALL when the value and its
 *    NUL do not fit (nothing is written beyond buf[0] = 0), EMU_E_NOKEY when the key has no value.
 *  - Output keys are kept apart from input keys: ITPosRun clears the previous outputs first, and ITPosGet
 *    looks in the outputs, then in the inputs. ITPosClear removes inputs and outputs but keeps emu_ settings.
 *
 * Input keys: amount (kopecks, decimal digits), currency ("643" only), rrn or transaction_id (refund and
 * cancel by link).
 * Output keys: response_code, text_message, received_text_message, rrn, auth_code, pan, result_amount,
 * amount, card_type, application_label, terminal_id, cardholder_name, date (YYMMDD), time (HHMMSS), slip,
 * transaction_id; emulator extras: emu_datetime (YYYYMMDDHHMMSS), emu_operation (purchase/refund/cancel);
 * reports add emu_batch, emu_purchase_count/_total, emu_refund_count/_total, emu_cancel_count/_total and
 * emu_net_total (kopecks). ITPosGet(h, "emu_busy") reads "1" while an ITPosRun is in progress.
 *
 * Emulator settings: ITPosSet keys, or environment variables ARCCOM_<KEY IN CAPITALS> read by CreateITPos
 * (emu_latency_ms -> ARCCOM_EMU_LATENCY_MS). ITPosSet of an unknown emu_ key returns EMU_E_PARAM.
 *   emu_state_file      file keeping the RRN counter and the operations (refund, cancel, last operation and
 *                       reports across handles, library reloads and processes); unset: kept in memory, shared
 *                       by the handles of one process. One process at a time per file (no file locking).
 *   emu_slip_file       path of cheq.out, rewritten by every operation that prints; unset: no file.
 *   emu_terminal_id     terminal id (default 00012345).
 *   emu_pan             the card "inserted" (default 4276380001001234, shown as 4276********1234).
 *   emu_cardholder      cardholder name (default EMULATED/CARD).
 *   emu_decline_over    purchases above this amount (kopecks) are declined with 51 (insufficient funds).
 *   emu_decline_amounts "AMOUNT[:CODE],..." purchases of exactly these amounts are declined with CODE
 *                       (2 or 3 digits, default 05 "do not honour"), e.g. "1313:51,666:05,777".
 *   emu_no_answer       1: every operation answers 999 "Пин-пад не отвечает" (nothing is recorded).
 *   emu_user_cancel     1: the cardholder presses cancel in purchase/refund/cancel: code 17 (recorded).
 *   emu_latency_ms      time ITPosRun spends "at the terminal"; Stop ends it at once with code 17.
 *   emu_ops             op-code map replacing DEFAULT_OPS: "purchase=1,refund=3,cancel=4,settlement=7,
 *                       settlement=11,..." with kinds purchase, cancel_last, refund, cancel, settlement,
 *                       short_report, full_report, last_operation, ping.
 *   emu_now             fixed clock YYYYMMDDHHMMSS, for reproducible slips.
 *
 * Response codes: 00 approved; 05 do not honour; 12 invalid transaction (void of a settled, voided, refunded
 * or cancel operation); 13 invalid amount (refund above the remaining amount, void with another amount);
 * 17 cancelled by the cardholder or by Stop; 25 original operation not found; 51 insufficient funds;
 * 999 no connection with the terminal.
 *
 * Build (the Python helper kktbridge.emulators.arcus.build does the first one):
 *   Linux:   cc -std=c99 -Wall -Wextra -O2 -fPIC -shared -D_POSIX_C_SOURCE=200809L -pthread
 *               -o libarccom.so arccom_emu.c
 *   MinGW:   gcc -std=c99 -Wall -Wextra -O2 -shared -D__USE_MINGW_ANSI_STDIO=1 -static-libgcc
 *               -o arccom.dll arccom_emu.c
 *   MSVC:    cl /nologo /W4 /O2 /utf-8 /LD arccom_emu.c /Fe:arccom.dll
 *   (Load it from Python with ctypes.CDLL, not WinDLL: the functions are cdecl.)
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#if defined(_WIN32)
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600 /* SRWLOCK, GetTickCount64 */
#endif
#define _CRT_SECURE_NO_WARNINGS
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(_WIN32)
#include <windows.h>
#define EXPORT __declspec(dllexport)
#define CALLCONV __cdecl
#else
#include <pthread.h>
#define EXPORT __attribute__((visibility("default")))
#define CALLCONV
#endif

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------------ */
/* The op-code map: the one table to edit. Only purchase = 1 is universal; see spec/devices.md 3.1.       */
/* ------------------------------------------------------------------------------------------------------ */

typedef enum {
    K_PURCHASE, K_CANCEL_LAST, K_REFUND, K_CANCEL, K_SETTLEMENT,
    K_SHORT_REPORT, K_FULL_REPORT, K_LAST_OPERATION, K_PING, K_COUNT
} Kind;

static const char *const KIND_NAMES[K_COUNT] = {
    "purchase", "cancel_last", "refund", "cancel", "settlement",
    "short_report", "full_report", "last_operation", "ping"
};

typedef struct { int code; Kind kind; } OpCode;

static const OpCode DEFAULT_OPS[] = {
    {1, K_PURCHASE},        /* оплата: every source */
    {2, K_CANCEL_LAST},     /* отмена последней: C++ ArcusHandlers */
    {3, K_REFUND},          /* возврат by rrn/transaction_id + amount: ArcusHandlers, 1C, OpenPapyrus, RAOS */
    {4, K_CANCEL},          /* отмена (void) by rrn, or the last operation without rrn: "universal cancel" */
    {6, K_FULL_REPORT},     /* подробный отчёт (X-report): Arcus2Lib, Aloha */
    {7, K_SETTLEMENT},      /* сверка итогов / close batch: Arcus2Lib, Aloha */
    {8, K_SHORT_REPORT},    /* краткий отчёт: 1C */
    {11, K_SETTLEMENT},     /* сверка итогов / close shift: ArcusHandlers, OpenPapyrus */
    {96, K_PING},           /* проверка связи: OpenPapyrus */
    {110, K_PING},          /* verify connection: Arcus2Lib */
    {113, K_LAST_OPERATION} /* print last cheque: Arcus2Lib; here: the keys and slip of the last operation */
};

#define MAX_OPS 64
#define MAX_RECORDS 10000
#define STATE_MAGIC "arccom-emu-state 1"
#define DEFAULT_TERMINAL_ID "00012345"
#define DEFAULT_PAN "4276380001001234"
#define DEFAULT_CARDHOLDER "EMULATED/CARD"

/* Russian texts as CP1251 bytes. */
#define RU_APPROVED        "\xce\xc4\xce\xc1\xd0\xc5\xcd\xce" /* ОДОБРЕНО */
#define RU_DECLINED        "\xce\xd2\xca\xc0\xc7" /* ОТКАЗ */
#define RU_DO_NOT_PAY      "\xcd\xc5 \xce\xcf\xcb\xc0\xd7\xc8\xc2\xc0\xd2\xdc" /* НЕ ОПЛАЧИВАТЬ */
#define RU_DO_NOT_HONOUR   "\xcd\xc5 \xce\xc1\xd1\xcb\xd3\xc6\xc8\xc2\xc0\xd2\xdc" /* НЕ ОБСЛУЖИВАТЬ */
#define RU_INVALID_TRX     "\xcd\xc5\xc2\xc5\xd0\xcd\xc0\xdf \xce\xcf\xc5\xd0\xc0\xd6\xc8\xdf" /* НЕВЕРНАЯ ОПЕРАЦИЯ */
#define RU_INVALID_AMOUNT  "\xcd\xc5\xc2\xc5\xd0\xcd\xc0\xdf \xd1\xd3\xcc\xcc\xc0" /* НЕВЕРНАЯ СУММА */
#define RU_BAD_CURRENCY    "\xcd\xc5\xc2\xc5\xd0\xcd\xc0\xdf \xc2\xc0\xcb\xde\xd2\xc0" /* НЕВЕРНАЯ ВАЛЮТА */
#define RU_CANCELLED       "\xce\xcf\xc5\xd0\xc0\xd6\xc8\xdf \xce\xd2\xcc\xc5\xcd\xc5\xcd\xc0" /* ОПЕРАЦИЯ ОТМЕНЕНА */
#define RU_INTERRUPTED     "\xce\xcf\xc5\xd0\xc0\xd6\xc8\xdf \xcf\xd0\xc5\xd0\xc2\xc0\xcd\xc0" /* ОПЕРАЦИЯ ПРЕРВАНА */
#define RU_NOT_FOUND       "\xce\xcf\xc5\xd0\xc0\xd6\xc8\xdf \xcd\xc5 \xcd\xc0\xc9\xc4\xc5\xcd\xc0" /* ОПЕРАЦИЯ НЕ НАЙДЕНА */
#define RU_NO_FUNDS        "\xcd\xc5\xc4\xce\xd1\xd2\xc0\xd2\xce\xd7\xcd\xce \xd1\xd0\xc5\xc4\xd1\xd2\xc2" /* НЕДОСТАТОЧНО СРЕДСТВ */
#define RU_NO_ANSWER       "\xcf\xe8\xed-\xef\xe0\xe4 \xed\xe5 \xee\xf2\xe2\xe5\xf7\xe0\xe5\xf2" /* Пин-пад не отвечает */
#define RU_CONNECTED       "\xd1\xc2\xdf\xc7\xdc \xd3\xd1\xd2\xc0\xcd\xce\xc2\xcb\xc5\xcd\xc0" /* СВЯЗЬ УСТАНОВЛЕНА */
#define RU_NO_AMOUNT       "\xcd\xc5 \xc7\xc0\xc4\xc0\xcd\xc0 \xd1\xd3\xcc\xcc\xc0" /* НЕ ЗАДАНА СУММА */
#define RU_NO_LINK         "\xcd\xc5 \xc7\xc0\xc4\xc0\xcd RRN \xc8\xcb\xc8 TRANSACTION_ID" /* НЕ ЗАДАН RRN ИЛИ TRANSACTION_ID */
#define RU_BAD_OPCODE      "\xcd\xc5\xc8\xc7\xc2\xc5\xd1\xd2\xcd\xc0\xdf \xce\xcf\xc5\xd0\xc0\xd6\xc8\xdf" /* НЕИЗВЕСТНАЯ ОПЕРАЦИЯ */
#define RU_BAD_CONFIG      "\xce\xd8\xc8\xc1\xca\xc0 \xcd\xc0\xd1\xd2\xd0\xce\xc9\xca\xc8 \xdd\xcc\xd3\xcb\xdf\xd2\xce\xd0\xc0" /* ОШИБКА НАСТРОЙКИ ЭМУЛЯТОРА */
#define RU_STATE_IO        "\xce\xd8\xc8\xc1\xca\xc0 \xd4\xc0\xc9\xcb\xc0 \xd1\xce\xd1\xd2\xce\xdf\xcd\xc8\xdf" /* ОШИБКА ФАЙЛА СОСТОЯНИЯ */
#define RU_PURCHASE        "\xce\xcf\xcb\xc0\xd2\xc0" /* ОПЛАТА */
#define RU_REFUND          "\xc2\xce\xc7\xc2\xd0\xc0\xd2" /* ВОЗВРАТ */
#define RU_CANCEL          "\xce\xd2\xcc\xc5\xcd\xc0" /* ОТМЕНА */
#define RU_SETTLEMENT      "\xd1\xc2\xc5\xd0\xca\xc0 \xc8\xd2\xce\xc3\xce\xc2" /* СВЕРКА ИТОГОВ */
#define RU_SHORT_REPORT    "\xca\xd0\xc0\xd2\xca\xc8\xc9 \xce\xd2\xd7\xc5\xd2" /* КРАТКИЙ ОТЧЕТ */
#define RU_FULL_REPORT     "\xcf\xce\xcb\xcd\xdb\xc9 \xce\xd2\xd7\xc5\xd2" /* ПОЛНЫЙ ОТЧЕТ */
#define RU_TOTALS_MATCH    "\xc8\xd2\xce\xc3\xc8 \xd1\xce\xc2\xcf\xc0\xcb\xc8" /* ИТОГИ СОВПАЛИ */
#define RU_COPY            "\xca\xce\xcf\xc8\xdf" /* КОПИЯ */
#define RU_TERMINAL        "\xd2\xc5\xd0\xcc\xc8\xcd\xc0\xcb:" /* ТЕРМИНАЛ: */
#define RU_DATE            "\xc4\xc0\xd2\xc0:" /* ДАТА: */
#define RU_TIME            "\xc2\xd0\xc5\xcc\xdf:" /* ВРЕМЯ: */
#define RU_SUM             "\xd1\xd3\xcc\xcc\xc0:" /* СУММА: */
#define RU_RUB             "\xd0\xd3\xc1" /* РУБ */
#define RU_AUTH_CODE       "\xca\xce\xc4 \xc0\xc2\xd2\xce\xd0\xc8\xc7\xc0\xd6\xc8\xc8:" /* КОД АВТОРИЗАЦИИ: */
#define RU_RESP_CODE       "\xca\xce\xc4 \xce\xd2\xc2\xc5\xd2\xc0:" /* КОД ОТВЕТА: */
#define RU_BATCH           "\xcf\xc0\xca\xc5\xd2:" /* ПАКЕТ: */
#define RU_TOTAL           "\xc8\xd2\xce\xc3\xce:" /* ИТОГО: */
#define RU_HEADER          "\xdd\xcc\xd3\xcb\xdf\xd2\xce\xd0 ARCUS2" /* ЭМУЛЯТОР ARCUS2 */

typedef struct { const char *code; const char *text; } CodeText;

static const CodeText RESPONSE_TEXTS[] = {
    {"00", RU_APPROVED}, {"05", RU_DO_NOT_HONOUR}, {"12", RU_INVALID_TRX}, {"13", RU_INVALID_AMOUNT},
    {"17", RU_CANCELLED}, {"25", RU_NOT_FOUND}, {"51", RU_NO_FUNDS}, {"999", RU_NO_ANSWER}
};

/* Settings that ITPosSet accepts and CreateITPos reads from ARCCOM_<KEY>. */
static const char *const SETTINGS[] = {
    "emu_state_file", "emu_slip_file", "emu_terminal_id", "emu_pan", "emu_cardholder", "emu_decline_over",
    "emu_decline_amounts", "emu_no_answer", "emu_user_cancel", "emu_latency_ms", "emu_ops", "emu_now"
};

enum {
    EMU_OK = 0,
    EMU_E_HANDLE = -1,  /* NULL, unknown or deleted handle */
    EMU_E_NOKEY = -2,   /* ITPosGet: the key has no value */
    EMU_E_SMALL = -3,   /* ITPosGet: the buffer cannot hold the value and its NUL */
    EMU_E_NOMEM = -4,
    EMU_E_BUSY = -5,    /* ITPosRun already running on this handle */
    EMU_E_PARAM = -6,   /* missing or invalid argument or input key; unknown emu_ key */
    EMU_E_OPCODE = -7,  /* op code not in the map */
    EMU_E_CONFIG = -8,  /* an emu_ setting cannot be parsed */
    EMU_E_STATE = -9    /* the state file cannot be read or written */
};

/* ------------------------------------------------------------------------------------------------------ */
/* Platform: one lock, a monotonic clock, a short sleep, the local time, replacing a file.                */
/* ------------------------------------------------------------------------------------------------------ */

#if defined(_WIN32)
static SRWLOCK g_lock = SRWLOCK_INIT;
static void lock(void) { AcquireSRWLockExclusive(&g_lock); }
static void unlock(void) { ReleaseSRWLockExclusive(&g_lock); }
static unsigned long long monotonic_ms(void) { return (unsigned long long)GetTickCount64(); }
static void sleep_ms(unsigned ms) { Sleep(ms); }
static void local_stamp(char out[15])
{
    SYSTEMTIME st;
    GetLocalTime(&st);
    snprintf(out, 15, "%04u%02u%02u%02u%02u%02u", (unsigned)st.wYear % 10000u, (unsigned)st.wMonth % 100u,
             (unsigned)st.wDay % 100u, (unsigned)st.wHour % 100u, (unsigned)st.wMinute % 100u,
             (unsigned)st.wSecond % 100u);
}
static int replace_file(const char *from, const char *to)
{
    return MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
}
#else
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) { pthread_mutex_lock(&g_lock); }
static void unlock(void) { pthread_mutex_unlock(&g_lock); }
static unsigned long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}
static void sleep_ms(unsigned ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000u;
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    nanosleep(&ts, NULL);
}
static void local_stamp(char out[15])
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}
static int replace_file(const char *from, const char *to) { return rename(from, to); }
#endif

/* ------------------------------------------------------------------------------------------------------ */
/* Small helpers: digits, key-value maps, a growing text buffer.                                          */
/* ------------------------------------------------------------------------------------------------------ */

/* Parses 1..max_digits decimal digits (nothing else) into *out. */
static int parse_digits(const char *s, size_t max_digits, unsigned long long *out)
{
    size_t n = 0;
    unsigned long long v = 0;
    if (!s || !*s) return 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= max_digits) return 0;
        v = v * 10u + (unsigned long long)(s[n] - '0');
    }
    *out = v;
    return 1;
}

static int parse_flag(const char *s, int *out)
{
    if (!s || !*s || !strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no")) { *out = 0; return 1; }
    if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes")) { *out = 1; return 1; }
    return 0;
}

static int is_setting(const char *key)
{
    size_t i;
    for (i = 0; i < sizeof SETTINGS / sizeof SETTINGS[0]; i++)
        if (!strcmp(key, SETTINGS[i])) return 1;
    return 0;
}

static char *dup_mem(const char *s, size_t n)
{
    char *p = (char *)malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}

typedef struct { char *key; char *val; size_t len; } Pair;
typedef struct { Pair *v; size_t n, cap; } Map;

static Pair *map_find(const Map *m, const char *key)
{
    size_t i;
    for (i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].key, key)) return &m->v[i];
    return NULL;
}

static const char *map_get(const Map *m, const char *key)
{
    Pair *p = map_find(m, key);
    return p && p->len ? p->val : NULL;
}

static int map_put(Map *m, const char *key, const char *val, size_t len)
{
    Pair *p = map_find(m, key);
    char *v = dup_mem(val, len);
    if (!v) return EMU_E_NOMEM;
    if (p) { free(p->val); p->val = v; p->len = len; return EMU_OK; }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        Pair *nv = (Pair *)realloc(m->v, cap * sizeof *nv);
        if (!nv) { free(v); return EMU_E_NOMEM; }
        m->v = nv;
        m->cap = cap;
    }
    p = &m->v[m->n];
    p->key = dup_mem(key, strlen(key));
    if (!p->key) { free(v); return EMU_E_NOMEM; }
    p->val = v;
    p->len = len;
    m->n++;
    return EMU_OK;
}

/* Removes every pair, or every pair but the emu_ settings. */
static void map_clear(Map *m, int keep_settings)
{
    size_t i, kept = 0;
    for (i = 0; i < m->n; i++) {
        if (keep_settings && is_setting(m->v[i].key)) { m->v[kept++] = m->v[i]; continue; }
        free(m->v[i].key);
        free(m->v[i].val);
    }
    m->n = kept;
    if (!kept) { free(m->v); m->v = NULL; m->cap = 0; }
}

static int map_copy(Map *dst, const Map *src)
{
    size_t i;
    for (i = 0; i < src->n; i++)
        if (map_put(dst, src->v[i].key, src->v[i].val, src->v[i].len) != EMU_OK) return EMU_E_NOMEM;
    return EMU_OK;
}

/* Output writer: remembers the first failure so the callers stay flat. */
typedef struct { Map *map; int err; } Out;

static void put(Out *o, const char *key, const char *val)
{
    if (o->err == EMU_OK) o->err = map_put(o->map, key, val, strlen(val));
}

static void put_num(Out *o, const char *key, long long v)
{
    char s[32];
    snprintf(s, sizeof s, "%lld", v);
    put(o, key, s);
}

typedef struct { char *p; size_t n, cap; int oom; } Buf;

static void line(Buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void line(Buf *b, const char *fmt, ...)
{
    va_list ap;
    int k;
    size_t need;
    if (b->oom) return;
    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) { b->oom = 1; return; }
    need = b->n + (size_t)k + 3; /* text, CR LF, NUL */
    if (need > b->cap) {
        char *p = (char *)realloc(b->p, need * 2);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = need * 2;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
    memcpy(b->p + b->n, "\r\n", 3);
    b->n += 2;
}

static void fmt_money(char out[32], long long kopecks)
{
    unsigned long long a = kopecks < 0 ? (unsigned long long)(-kopecks) : (unsigned long long)kopecks;
    snprintf(out, 32, "%s%llu.%02llu", kopecks < 0 ? "-" : "", a / 100u, a % 100u);
}

/* RRN: 12 digits of the operation number, so it is unique and continues with the state file. */
static void fmt_rrn(char out[24], unsigned long seq) { snprintf(out, 24, "%012lu", seq); }

static void fmt_transaction_id(char out[24], unsigned long seq) { snprintf(out, 24, "%010lu", seq); }

/* Authorization code: 6 characters, a bijection of the operation number modulo 36^6 (1000003 is coprime
 * with 36), so codes do not repeat for the first two billion operations. */
static void fmt_auth_code(char out[8], unsigned long seq)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    unsigned long long v = ((unsigned long long)seq * 1000003u + 777u) % 2176782336ULL;
    int i;
    for (i = 5; i >= 0; i--) { out[i] = digits[v % 36u]; v /= 36u; }
    out[6] = 0;
}

/* 4276380001001234 -> 4276********1234 */
static void mask_pan(char out[24], const char *pan)
{
    size_t n = strlen(pan), i;
    if (n > 23) n = 23;
    for (i = 0; i < n; i++) out[i] = (i < 4 || i + 4 >= n) ? pan[i] : '*';
    out[n] = 0;
}

static void card_kind(const char *pan, const char **type, const char **label)
{
    int bin4 = 0, i;
    for (i = 0; i < 4 && pan[i] >= '0' && pan[i] <= '9'; i++) bin4 = bin4 * 10 + (pan[i] - '0');
    if (pan[0] == '4') { *type = "VISA"; *label = "VISA CLASSIC"; }
    else if (bin4 >= 2200 && bin4 <= 2204) { *type = "MIR"; *label = "MIR"; }
    else if ((bin4 >= 5100 && bin4 <= 5599) || (bin4 >= 2221 && bin4 <= 2720)) {
        *type = "MASTERCARD"; *label = "MASTERCARD";
    }
    else if (pan[0] == '5' || pan[0] == '6') { *type = "MAESTRO"; *label = "MAESTRO"; }
    else { *type = "CARD"; *label = "CARD"; }
}

static const char *response_text(const char *code)
{
    size_t i;
    for (i = 0; i < sizeof RESPONSE_TEXTS / sizeof RESPONSE_TEXTS[0]; i++)
        if (!strcmp(code, RESPONSE_TEXTS[i].code)) return RESPONSE_TEXTS[i].text;
    return RU_DECLINED;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Settings and the request, read from a private copy of the handle's keys.                               */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct {
    const char *state_file, *slip_file, *terminal_id, *pan, *cardholder, *decline_amounts, *now;
    int has_decline_over, no_answer, user_cancel;
    unsigned long long decline_over, latency_ms;
    OpCode ops[MAX_OPS];
    size_t n_ops;
} Config;

/* Looks amount up in "AMOUNT[:CODE],...": 1 and the code when listed, 0 when not, -1 on a syntax error. */
static int decline_rule(const char *list, unsigned long long amount, char code[4])
{
    int found = 0;
    const char *p = list;
    while (p && *p) {
        char item[64], *colon;
        unsigned long long a, c;
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof item) return -1;
        memcpy(item, p, n);
        item[n] = 0;
        colon = strchr(item, ':');
        if (colon) *colon = 0;
        if (!parse_digits(item, 12, &a)) return -1;
        if (colon && (strlen(colon + 1) < 2 || !parse_digits(colon + 1, 3, &c) || c == 0)) return -1;
        if (!found && a == amount) {
            found = 1;
            snprintf(code, 4, "%s", colon ? colon + 1 : "05");
        }
        p += n;
        if (*p == ',') p++;
    }
    return found;
}

/* "purchase=1,refund=3,settlement=7,settlement=11" */
static int parse_ops(const char *s, Config *c)
{
    c->n_ops = 0;
    while (*s) {
        char item[64], *eq;
        unsigned long long code;
        size_t n = strcspn(s, ","), i, k;
        if (n == 0 || n >= sizeof item || c->n_ops == MAX_OPS) return 0;
        memcpy(item, s, n);
        item[n] = 0;
        eq = strchr(item, '=');
        if (!eq || !parse_digits(eq + 1, 5, &code)) return 0;
        *eq = 0;
        for (k = 0; k < K_COUNT && strcmp(item, KIND_NAMES[k]); k++) {}
        if (k == K_COUNT) return 0;
        for (i = 0; i < c->n_ops; i++)
            if (c->ops[i].code == (int)code) return 0;
        c->ops[c->n_ops].code = (int)code;
        c->ops[c->n_ops].kind = (Kind)k;
        c->n_ops++;
        s += n;
        if (*s == ',') s++;
    }
    return c->n_ops > 0;
}

static int parse_config(const Map *in, Config *c)
{
    const char *v;
    unsigned long long pan_digits;
    char code[4];
    memset(c, 0, sizeof *c);
    c->state_file = map_get(in, "emu_state_file");
    c->slip_file = map_get(in, "emu_slip_file");
    c->terminal_id = map_get(in, "emu_terminal_id");
    if (!c->terminal_id) c->terminal_id = DEFAULT_TERMINAL_ID;
    if (strlen(c->terminal_id) > 16) return 0;
    c->pan = map_get(in, "emu_pan");
    if (!c->pan) c->pan = DEFAULT_PAN;
    if (strlen(c->pan) < 12 || !parse_digits(c->pan, 19, &pan_digits)) return 0;
    c->cardholder = map_get(in, "emu_cardholder");
    if (!c->cardholder) c->cardholder = DEFAULT_CARDHOLDER;
    if ((v = map_get(in, "emu_decline_over")) != NULL) {
        if (!parse_digits(v, 12, &c->decline_over)) return 0;
        c->has_decline_over = 1;
    }
    c->decline_amounts = map_get(in, "emu_decline_amounts");
    if (c->decline_amounts && decline_rule(c->decline_amounts, 0, code) < 0) return 0;
    if (!parse_flag(map_get(in, "emu_no_answer"), &c->no_answer)) return 0;
    if (!parse_flag(map_get(in, "emu_user_cancel"), &c->user_cancel)) return 0;
    if ((v = map_get(in, "emu_latency_ms")) != NULL && !parse_digits(v, 7, &c->latency_ms)) return 0;
    if ((v = map_get(in, "emu_ops")) != NULL) {
        if (!parse_ops(v, c)) return 0;
    } else {
        c->n_ops = sizeof DEFAULT_OPS / sizeof DEFAULT_OPS[0];
        memcpy(c->ops, DEFAULT_OPS, sizeof DEFAULT_OPS);
    }
    c->now = map_get(in, "emu_now");
    if (c->now && (strlen(c->now) != 14 || !parse_digits(c->now, 14, &pan_digits))) return 0;
    return 1;
}

typedef struct {
    Kind kind;
    int has_amount, has_link, link_known;
    unsigned long long amount;
    unsigned long link; /* operation number named by rrn or transaction_id */
} Request;

#define REFUSE(text, code) do { *why = (text); return (code); } while (0)

static int read_request(const Map *in, const Config *c, int opcode, Request *rq, const char **why)
{
    const char *amount = map_get(in, "amount"), *currency = map_get(in, "currency");
    const char *rrn = map_get(in, "rrn"), *trx = map_get(in, "transaction_id");
    unsigned long long link = 0;
    size_t i;
    memset(rq, 0, sizeof *rq);
    for (i = 0; i < c->n_ops && c->ops[i].code != opcode; i++) {}
    if (i == c->n_ops) REFUSE(RU_BAD_OPCODE, EMU_E_OPCODE);
    rq->kind = c->ops[i].kind;
    if (amount) {
        if (!parse_digits(amount, 12, &rq->amount) || rq->amount == 0) REFUSE(RU_INVALID_AMOUNT, EMU_E_PARAM);
        rq->has_amount = 1;
    }
    if ((rq->kind == K_PURCHASE || rq->kind == K_REFUND) && !rq->has_amount) REFUSE(RU_NO_AMOUNT, EMU_E_PARAM);
    if (currency && strcmp(currency, "643")) REFUSE(RU_BAD_CURRENCY, EMU_E_PARAM);
    if (rrn || trx) {
        rq->has_link = 1;
        rq->link_known = rrn ? parse_digits(rrn, 12, &link) : parse_digits(trx, 10, &link);
        rq->link_known = rq->link_known && link > 0 && link <= 0xFFFFFFFFUL;
        rq->link = (unsigned long)link;
    }
    if (rq->kind == K_REFUND && !rq->has_link) REFUSE(RU_NO_LINK, EMU_E_PARAM);
    return EMU_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The operation store: counter, batch number and operations, in memory or in the state file.             */
/*   arccom-emu-state 1                                                                                    */
/*   seq 3                                                                                                 */
/*   batch 1                                                                                               */
/*   op <seq> <P|R|C> <code> <amount> <original seq> <YYYYMMDDHHMMSS> <batch> <refunded> <voided> <pan>   */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct {
    unsigned long seq;          /* operation number: RRN, transaction_id and auth_code derive from it */
    char kind;                  /* 'P' purchase, 'R' refund, 'C' cancel (void) */
    char rc[4];                 /* response code */
    unsigned long long amount;
    unsigned long orig;         /* operation a refund or cancel refers to, 0 if none */
    char when[15];
    unsigned long batch;        /* batch (between two settlements) the operation belongs to */
    unsigned long long refunded; /* purchases: sum refunded so far */
    int voided;
    char pan[24];               /* masked */
} Rec;

typedef struct { unsigned long seq, batch; Rec *r; size_t n, cap; } Store;

static Store g_memory = {0, 1, NULL, 0, 0};

static Rec *store_add(Store *s)
{
    if (s->n >= MAX_RECORDS && s->r[0].batch < s->batch) {
        memmove(s->r, s->r + 1, (s->n - 1) * sizeof *s->r);
        s->n--;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        Rec *nr = (Rec *)realloc(s->r, cap * sizeof *nr);
        if (!nr) return NULL;
        s->r = nr;
        s->cap = cap;
    }
    memset(&s->r[s->n], 0, sizeof *s->r);
    return &s->r[s->n++];
}

static Rec *store_find(Store *s, unsigned long seq)
{
    size_t i;
    for (i = s->n; i-- > 0;)
        if (s->r[i].seq == seq) return &s->r[i];
    return NULL;
}

static int store_load(Store *s, const char *path)
{
    char buf[256];
    FILE *f = fopen(path, "r");
    s->seq = 0;
    s->batch = 1;
    s->n = 0;
    if (!f) return errno == ENOENT ? EMU_OK : EMU_E_STATE;
    if (!fgets(buf, sizeof buf, f) || strncmp(buf, STATE_MAGIC, strlen(STATE_MAGIC))) {
        fclose(f);
        return EMU_E_STATE;
    }
    while (fgets(buf, sizeof buf, f)) {
        Rec r, *slot;
        memset(&r, 0, sizeof r);
        if (buf[0] == '\n' || buf[0] == '#') continue;
        if (sscanf(buf, "seq %lu", &s->seq) == 1 || sscanf(buf, "batch %lu", &s->batch) == 1) continue;
        if (sscanf(buf, "op %lu %c %3s %llu %lu %14s %lu %llu %d %23s", &r.seq, &r.kind, r.rc, &r.amount,
                   &r.orig, r.when, &r.batch, &r.refunded, &r.voided, r.pan) != 10
            || (slot = store_add(s)) == NULL) {
            fclose(f);
            return EMU_E_STATE;
        }
        *slot = r;
    }
    fclose(f);
    return EMU_OK;
}

static int store_save(const Store *s, const char *path)
{
    size_t i, n = strlen(path);
    int ok;
    char *tmp = (char *)malloc(n + 5);
    FILE *f;
    if (!tmp) return EMU_E_NOMEM;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    f = fopen(tmp, "w");
    if (!f) { free(tmp); return EMU_E_STATE; }
    fprintf(f, "%s\nseq %lu\nbatch %lu\n", STATE_MAGIC, s->seq, s->batch);
    for (i = 0; i < s->n; i++) {
        const Rec *r = &s->r[i];
        fprintf(f, "op %lu %c %s %llu %lu %s %lu %llu %d %s\n", r->seq, r->kind, r->rc, r->amount, r->orig,
                r->when, r->batch, r->refunded, r->voided, r->pan);
    }
    ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    ok = ok && replace_file(tmp, path) == 0;
    if (!ok) remove(tmp);
    free(tmp);
    return ok ? EMU_OK : EMU_E_STATE;
}

/* The approved operation a rrn/transaction_id names, or NULL. */
static Rec *find_linked(Store *s, const Request *rq)
{
    Rec *r = rq->link_known ? store_find(s, rq->link) : NULL;
    return r && !strcmp(r->rc, "00") ? r : NULL;
}

static Rec *last_approved(Store *s)
{
    size_t i;
    for (i = s->n; i-- > 0;)
        if (!strcmp(s->r[i].rc, "00")) return &s->r[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The terminal's decisions. Each fills the new record's code, amount, original and card.                 */
/* ------------------------------------------------------------------------------------------------------ */

static void decide_purchase(const Config *c, const Request *rq, Rec *out)
{
    char code[4];
    if (c->decline_amounts && decline_rule(c->decline_amounts, rq->amount, code) == 1) strcpy(out->rc, code);
    else if (c->has_decline_over && rq->amount > c->decline_over) strcpy(out->rc, "51");
    else strcpy(out->rc, "00");
}

static void decide_refund(Store *s, const Request *rq, Rec *out)
{
    Rec *o = find_linked(s, rq);
    unsigned long long remaining;
    if (!o) { strcpy(out->rc, "25"); return; }
    out->orig = o->seq;
    strcpy(out->pan, o->pan);
    if (o->kind != 'P') { strcpy(out->rc, "12"); return; }
    remaining = o->voided ? 0 : o->amount - o->refunded;
    if (rq->amount > remaining) { strcpy(out->rc, "13"); return; }
    o->refunded += rq->amount;
    strcpy(out->rc, "00");
}

/* Void by link, or of the last approved operation. Only the current batch, never twice, never a cancel. */
static void decide_cancel(Store *s, const Request *rq, Rec *out)
{
    Rec *o = (rq->kind == K_CANCEL_LAST || !rq->has_link) ? last_approved(s) : find_linked(s, rq);
    if (!o) { strcpy(out->rc, "25"); return; }
    out->orig = o->seq;
    out->amount = o->amount;
    strcpy(out->pan, o->pan);
    if (o->kind == 'C' || o->voided || o->batch != s->batch || (o->kind == 'P' && o->refunded)) {
        strcpy(out->rc, "12");
        return;
    }
    if (rq->has_amount && rq->amount != o->amount) { strcpy(out->rc, "13"); return; }
    o->voided = 1;
    if (o->kind == 'R') {
        Rec *p = store_find(s, o->orig);
        if (p) p->refunded -= o->amount;
    }
    strcpy(out->rc, "00");
}

/* ------------------------------------------------------------------------------------------------------ */
/* Slips and output keys.                                                                                  */
/* ------------------------------------------------------------------------------------------------------ */

static const char *kind_title(char kind)
{
    return kind == 'P' ? RU_PURCHASE : kind == 'R' ? RU_REFUND : RU_CANCEL;
}

static void slip_header(Buf *b, const Config *c, const char *when)
{
    line(b, "%s", RU_HEADER);
    line(b, RU_TERMINAL " %s", c->terminal_id);
    line(b, RU_DATE " %.2s.%.2s.%.4s " RU_TIME " %.2s:%.2s:%.2s", when + 6, when + 4, when, when + 8,
         when + 10, when + 12);
}

static void operation_slip(Buf *b, const Config *c, const Rec *r, int copy, const char *text)
{
    char money[32], rrn[24], auth[8];
    const char *type, *label;
    int approved = !strcmp(r->rc, "00");
    card_kind(r->pan, &type, &label);
    fmt_money(money, (long long)r->amount);
    slip_header(b, c, r->when);
    if (copy) line(b, "%s", RU_COPY);
    line(b, "%s", kind_title(r->kind));
    line(b, "PAN:%s", r->pan);
    line(b, "%s", type);
    line(b, RU_SUM " %s " RU_RUB, money);
    if (approved) { fmt_auth_code(auth, r->seq); line(b, RU_AUTH_CODE " %s", auth); }
    if (strcmp(r->rc, "17")) { fmt_rrn(rrn, r->seq); line(b, "RRN:%s", rrn); }
    if (approved) line(b, "%s", RU_APPROVED);
    else { line(b, "%s", RU_DECLINED); line(b, "%s", text); }
    line(b, RU_RESP_CODE " %s", r->rc);
    if (!approved) line(b, "%s", RU_DO_NOT_PAY);
}

static void write_slip_file(const Config *c, const Buf *b)
{
    FILE *f;
    if (!c->slip_file || b->oom || !b->p) return;
    f = fopen(c->slip_file, "wb");
    if (!f) return; /* the money has moved already: a missing cheq.out must not undo it */
    fwrite(b->p, 1, b->n, f);
    fclose(f);
}

static void put_slip(Out *o, const Config *c, Buf *b)
{
    if (b->oom) { if (o->err == EMU_OK) o->err = EMU_E_NOMEM; }
    else if (b->p) { put(o, "slip", b->p); write_slip_file(c, b); }
    free(b->p);
}

static void put_clock(Out *o, const char *when)
{
    char d[8], t[8];
    snprintf(d, sizeof d, "%.6s", when + 2);
    snprintf(t, sizeof t, "%.6s", when + 8);
    put(o, "date", d);
    put(o, "time", t);
    put(o, "emu_datetime", when);
}

static void put_result(Out *o, const char *code, const char *text, int from_host)
{
    put(o, "response_code", code);
    put(o, "text_message", text);
    if (from_host) put(o, "received_text_message", text);
}

static void put_operation(Out *o, const Config *c, const Rec *r, int copy, const char *text)
{
    char s[32];
    const char *type, *label;
    int approved = !strcmp(r->rc, "00");
    Buf b = {NULL, 0, 0, 0};
    if (!text) text = response_text(r->rc);
    put_result(o, r->rc, text, strcmp(r->rc, "17") != 0);
    put(o, "emu_operation", r->kind == 'P' ? "purchase" : r->kind == 'R' ? "refund" : "cancel");
    if (strcmp(r->rc, "17")) {
        fmt_rrn(s, r->seq);
        put(o, "rrn", s);
        fmt_transaction_id(s, r->seq);
        put(o, "transaction_id", s);
    }
    if (approved) { fmt_auth_code(s, r->seq); put(o, "auth_code", s); }
    card_kind(r->pan, &type, &label);
    put(o, "pan", r->pan);
    put(o, "card_type", type);
    put(o, "application_label", label);
    put(o, "cardholder_name", c->cardholder);
    put_num(o, "amount", (long long)r->amount);
    put_num(o, "result_amount", approved ? (long long)r->amount : 0);
    put_clock(o, r->when);
    operation_slip(&b, c, r, copy, text);
    put_slip(o, c, &b);
}

typedef struct {
    unsigned long purchases, refunds, cancels;
    unsigned long long purchase_sum, refund_sum, cancel_sum;
    long long net;
} Totals;

static void batch_totals(Store *s, Totals *t)
{
    size_t i;
    memset(t, 0, sizeof *t);
    for (i = 0; i < s->n; i++) {
        const Rec *r = &s->r[i];
        long long a = (long long)r->amount;
        if (r->batch != s->batch || strcmp(r->rc, "00")) continue;
        if (r->kind == 'P') { t->purchases++; t->purchase_sum += r->amount; t->net += a; }
        else if (r->kind == 'R') { t->refunds++; t->refund_sum += r->amount; t->net -= a; }
        else {
            const Rec *o = store_find(s, r->orig);
            t->cancels++;
            t->cancel_sum += r->amount;
            t->net += (o && o->kind == 'R') ? a : -a;
        }
    }
}

static void put_report(Out *o, const Config *c, Store *s, Kind kind, const char *when)
{
    Totals t;
    Buf b = {NULL, 0, 0, 0};
    char m1[32], m2[32], rrn[24];
    size_t i;
    const char *title = kind == K_SETTLEMENT    ? RU_SETTLEMENT
                        : kind == K_FULL_REPORT ? RU_FULL_REPORT
                                                : RU_SHORT_REPORT;
    batch_totals(s, &t);
    put_result(o, "00", kind == K_SETTLEMENT ? RU_TOTALS_MATCH : RU_APPROVED, 1);
    put_clock(o, when);
    put_num(o, "emu_batch", (long long)s->batch);
    put_num(o, "emu_purchase_count", (long long)t.purchases);
    put_num(o, "emu_purchase_total", (long long)t.purchase_sum);
    put_num(o, "emu_refund_count", (long long)t.refunds);
    put_num(o, "emu_refund_total", (long long)t.refund_sum);
    put_num(o, "emu_cancel_count", (long long)t.cancels);
    put_num(o, "emu_cancel_total", (long long)t.cancel_sum);
    put_num(o, "emu_net_total", t.net);
    slip_header(&b, c, when);
    line(&b, "%s", title);
    line(&b, RU_BATCH " %lu", s->batch);
    for (i = 0; kind == K_FULL_REPORT && i < s->n; i++) {
        const Rec *r = &s->r[i];
        if (r->batch != s->batch) continue;
        fmt_money(m1, (long long)r->amount);
        fmt_rrn(rrn, r->seq);
        line(&b, "%s %s %s %s %s", kind_title(r->kind), m1, r->pan, strcmp(r->rc, "17") ? rrn : "-", r->rc);
    }
    fmt_money(m1, (long long)t.purchase_sum);
    line(&b, RU_PURCHASE ": %lu / %s " RU_RUB, t.purchases, m1);
    fmt_money(m1, (long long)t.refund_sum);
    line(&b, RU_REFUND ": %lu / %s " RU_RUB, t.refunds, m1);
    fmt_money(m1, (long long)t.cancel_sum);
    line(&b, RU_CANCEL ": %lu / %s " RU_RUB, t.cancels, m1);
    fmt_money(m2, t.net);
    line(&b, RU_TOTAL " %s " RU_RUB, m2);
    if (kind == K_SETTLEMENT) line(&b, "%s", RU_TOTALS_MATCH);
    put_slip(o, c, &b);
}

/* ------------------------------------------------------------------------------------------------------ */
/* One exchange with the emulated terminal, under the lock, after the wait.                               */
/* ------------------------------------------------------------------------------------------------------ */

static int is_financial(Kind k)
{
    return k == K_PURCHASE || k == K_REFUND || k == K_CANCEL || k == K_CANCEL_LAST;
}

static int exchange(Map *outputs, const Config *c, const Request *rq, int stopped)
{
    Out o;
    Store file_store = {0, 1, NULL, 0, 0};
    Store *s = c->state_file ? &file_store : &g_memory;
    char when[15];
    int rc = EMU_OK, save = 0;
    o.map = outputs;
    o.err = EMU_OK;
    if (c->now) memcpy(when, c->now, 15);
    else local_stamp(when);
    put(&o, "terminal_id", c->terminal_id);
    if (rq->has_amount) put_num(&o, "amount", (long long)rq->amount);

    if (c->no_answer && !stopped) {
        put_result(&o, "999", RU_NO_ANSWER, 0);
        put_clock(&o, when);
        return o.err;
    }
    if (!is_financial(rq->kind) && stopped) {
        put_result(&o, "17", RU_INTERRUPTED, 0);
        put_clock(&o, when);
        return o.err;
    }
    if (rq->kind == K_PING) {
        put_result(&o, "00", RU_CONNECTED, 0);
        put_clock(&o, when);
        return o.err;
    }
    if (c->state_file && (rc = store_load(s, c->state_file)) != EMU_OK) {
        free(file_store.r);
        put(&o, "text_message", RU_STATE_IO);
        return rc;
    }

    if (is_financial(rq->kind)) {
        Rec r;
        const char *text = NULL;
        memset(&r, 0, sizeof r);
        r.kind = rq->kind == K_PURCHASE ? 'P' : rq->kind == K_REFUND ? 'R' : 'C';
        r.amount = rq->amount;
        mask_pan(r.pan, c->pan);
        memcpy(r.when, when, 15);
        if (stopped) { strcpy(r.rc, "17"); text = RU_INTERRUPTED; }
        else if (c->user_cancel) strcpy(r.rc, "17");
        else if (rq->kind == K_PURCHASE) decide_purchase(c, rq, &r);
        else if (rq->kind == K_REFUND) decide_refund(s, rq, &r);
        else decide_cancel(s, rq, &r);
        r.seq = ++s->seq;
        r.batch = s->batch;
        {
            Rec *slot = store_add(s);
            if (!slot) rc = EMU_E_NOMEM;
            else { *slot = r; save = 1; put_operation(&o, c, &r, 0, text); }
        }
    } else if (rq->kind == K_LAST_OPERATION) {
        Rec *last = s->n ? &s->r[s->n - 1] : NULL;
        if (last) put_operation(&o, c, last, 1, NULL);
        else { put_result(&o, "25", RU_NOT_FOUND, 1); put_clock(&o, when); }
    } else {
        put_report(&o, c, s, rq->kind, when);
        if (rq->kind == K_SETTLEMENT) { s->batch++; save = 1; }
    }

    if (rc == EMU_OK && save && c->state_file) rc = store_save(s, c->state_file);
    if (rc == EMU_E_STATE) put(&o, "text_message", RU_STATE_IO);
    if (c->state_file) free(file_store.r);
    return rc != EMU_OK ? rc : o.err;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Handles and the exported API.                                                                          */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct Pos {
    Map in, out;
    int busy, stop, deleted;
    struct Pos *next;
} Pos;

static Pos *g_handles = NULL;

/* The live handle behind p, or NULL: the pointer is only compared, never dereferenced blindly. */
static Pos *live(void *p)
{
    Pos *h;
    for (h = g_handles; h; h = h->next)
        if ((void *)h == p) return h;
    return NULL;
}

static void pos_free(Pos *h)
{
    map_clear(&h->in, 0);
    map_clear(&h->out, 0);
    free(h);
}

EXPORT void *CALLCONV CreateITPos(void)
{
    size_t i;
    Pos *h = (Pos *)calloc(1, sizeof *h);
    if (!h) return NULL;
    for (i = 0; i < sizeof SETTINGS / sizeof SETTINGS[0]; i++) {
        char name[64];
        const char *v;
        size_t k;
        snprintf(name, sizeof name, "ARCCOM_%s", SETTINGS[i]);
        for (k = 0; name[k]; k++)
            if (name[k] >= 'a' && name[k] <= 'z') name[k] = (char)(name[k] - 'a' + 'A');
        if ((v = getenv(name)) != NULL && map_put(&h->in, SETTINGS[i], v, strlen(v)) != EMU_OK) {
            pos_free(h);
            return NULL;
        }
    }
    lock();
    h->next = g_handles;
    g_handles = h;
    unlock();
    return h;
}

EXPORT void CALLCONV DeleteITPos(void *handle)
{
    Pos *h, **pp;
    lock();
    h = live(handle);
    if (h) {
        for (pp = &g_handles; *pp != h; pp = &(*pp)->next) {}
        *pp = h->next;
        if (h->busy) { h->deleted = 1; h->stop = 1; } /* the running ITPosRun frees it */
        else pos_free(h);
    }
    unlock();
}

EXPORT int CALLCONV ITPosSet(void *handle, const char *key, const char *value, int size)
{
    int rc;
    Pos *h;
    lock();
    h = live(handle);
    if (!h) rc = EMU_E_HANDLE;
    else if (!key || !*key || !value || size < -1) rc = EMU_E_PARAM;
    else if (!strncmp(key, "emu_", 4) && !is_setting(key)) rc = EMU_E_PARAM;
    else rc = map_put(&h->in, key, value, size == -1 ? strlen(value) : (size_t)size);
    unlock();
    return rc;
}

EXPORT int CALLCONV ITPosGet(void *handle, const char *key, char *buf, int size)
{
    int rc;
    Pos *h;
    lock();
    h = live(handle);
    if (!h) rc = EMU_E_HANDLE;
    else if (!key) rc = EMU_E_PARAM;
    else {
        const char *v = NULL;
        size_t len = 0;
        Pair *p;
        if (!strcmp(key, "emu_busy")) { v = h->busy ? "1" : "0"; len = 1; }
        else if ((p = map_find(&h->out, key)) != NULL || (p = map_find(&h->in, key)) != NULL) {
            v = p->val;
            len = p->len;
        }
        if (!v) { rc = EMU_E_NOKEY; if (buf && size > 0) buf[0] = 0; }
        else if (!buf) rc = (int)(len + 1);
        else if (size < 0 || (size_t)size < len + 1) { rc = EMU_E_SMALL; if (size > 0) buf[0] = 0; }
        else { memcpy(buf, v, len + 1); rc = EMU_OK; }
    }
    unlock();
    return rc;
}

EXPORT int CALLCONV ITPosClear(void *handle)
{
    int rc = EMU_E_HANDLE;
    Pos *h;
    lock();
    h = live(handle);
    if (h) { map_clear(&h->out, 0); map_clear(&h->in, 1); rc = EMU_OK; }
    unlock();
    return rc;
}

EXPORT void CALLCONV Stop(void *handle)
{
    Pos *h;
    lock();
    h = live(handle);
    if (h && h->busy) h->stop = 1;
    unlock();
}

/* Waits up to ms, looking at the stop flag every 2 ms. Returns 1 when stopped. */
static int wait_or_stop(Pos *h, unsigned long long ms)
{
    unsigned long long end = monotonic_ms() + ms;
    for (;;) {
        int stopped;
        lock();
        stopped = h->stop;
        unlock();
        if (stopped) return 1;
        if (monotonic_ms() >= end) return 0;
        sleep_ms(2);
    }
}

EXPORT int CALLCONV ITPosRun(void *handle, int opcode)
{
    Pos *h;
    Map in = {NULL, 0, 0};
    Config c;
    Request rq;
    const char *why = RU_BAD_CONFIG;
    int rc, stopped = 0;

    lock();
    h = live(handle);
    if (!h) rc = EMU_E_HANDLE;
    else if (h->busy) rc = EMU_E_BUSY;
    else {
        map_clear(&h->out, 0);
        rc = map_copy(&in, &h->in);
        h->busy = rc == EMU_OK;
        h->stop = 0;
    }
    unlock();
    if (rc != EMU_OK) { map_clear(&in, 0); return rc; }

    if (!parse_config(&in, &c)) rc = EMU_E_CONFIG;
    else rc = read_request(&in, &c, opcode, &rq, &why);
    if (rc == EMU_OK) stopped = wait_or_stop(h, c.latency_ms);

    lock();
    if (rc == EMU_OK) rc = exchange(&h->out, &c, &rq, stopped);
    else map_put(&h->out, "text_message", why, strlen(why));
    h->busy = 0;
    if (h->deleted) pos_free(h);
    unlock();
    map_clear(&in, 0);
    return rc;
}

#ifdef __cplusplus
}
#endif
