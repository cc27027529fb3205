// The integrator's test page (web/test_page.html): a packet from the editor, run on the local driver the way a CMS
// page does (fetch with the BIT headers, so the browser asks the driver's CORS first), or sent through the cloud
// as the vendor's signed form (md5 in the browser, BIT_DATA = btoa(encodeURIComponent(json))) and followed live.
// Every text is in both languages (<span lang>); everything shown from an answer goes in as text, never as HTML.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var mode = document.documentElement.getAttribute("data-mode");
  var presets = [];
  var FORM = "/api/fiscal/create-receipt.php";
  var LABELS = {
    fdNumber_1040: ["ФД", "FD number"], fiscalSign_1077: ["ФП", "fiscal sign"], fnNumber_1041: ["ФН", "FN number"],
    shiftNumber_1038: ["Смена", "shift"], receiptNumber_1042: ["Чек №", "receipt no."],
    dateTime_1012: ["Дата и время", "date and time"], regNumber_1037: ["РН ККТ", "registration no."],
    total_1020: ["Итог", "total"], receiptType_1054: ["Тип чека", "receipt type"], rrn: ["RRN", "RRN"],
    authCode: ["Код авторизации", "authorization code"], cardMask: ["Карта", "card"], amount: ["Сумма", "amount"],
    responseText: ["Ответ банка", "bank's answer"], terminalId: ["Терминал", "terminal"]
  };
  var MONEY = {total_1020: 1, amount: 1};  // rubles: shown with their kopecks (JSON.parse made 11.00 into 11)
  var HIDDEN = {name: 1, type: 1, success: 1, error: 1, warnings: 1, slip: 1, qr: 1, errorRu: 1, errorEn: 1};
  var STATES = ["queued", "delivered", "done"];
  var STATE_NAMES = {queued: ["в очереди", "queued"], delivered: ["у драйвера", "at the driver"],
                     done: ["пробит", "done"], failed: ["ошибка", "failed"], unknown: ["исход неизвестен", "unknown"],
                     expired: ["просрочен", "expired"]};

  // --- small DOM helpers: both languages side by side, text only ---------------------------------------------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function bi(ru, en) {
    var both = document.createDocumentFragment();
    both.appendChild(el("span", {lang: "ru"}, ru));
    both.appendChild(el("span", {lang: "en"}, en));
    return both;
  }
  function show(kind, ru, en, extra) {
    var box = $("message");
    box.textContent = "";
    box.className = kind === "error" ? "error-box" : kind === "notice" ? "notice" : "";
    box.appendChild(el("p", {}, bi(ru, en)));
    if (extra) box.appendChild(extra);
    $("outcome").hidden = false;
  }
  function busy(on) { $("run-local").disabled = on; $("send-cloud").disabled = on; }

  // --- the fields, prefilled from the query string as the vendor's page does -----------------------------------
  var QUERY = {kkt: "BIT_KKT_TOKEN", bnk: "BIT_BNK_TRM_TOKEN", order: "BIT_ORDER_ID", driver: "BIT_PROG_URL_APP",
               account: "BIT_ACCOUNT_ID", success: "BIT_CALLBACK_SUCCESS", failed: "BIT_CALLBACK_FAILED",
               code: "BIT_DATAINTEGRITY_CODE"};
  function prefill() {
    var query = new URLSearchParams(location.search);
    Object.keys(QUERY).forEach(function (id) {
      var value = query.get(QUERY[id]) || query.get(QUERY[id].toLowerCase());
      if (value !== null) $(id).value = value.slice(0, 1024);
    });
    if (query.get("driver")) $("driver").value = query.get("driver").slice(0, 1024);
    if (mode === "driver" && !query.get("driver") && !query.get(QUERY.driver)) $("driver").value = location.origin;
    if (!$("order").value) newOrder();
  }
  function newOrder() { $("order").value = String(Math.floor(Math.random() * 1000000) + 1); }

  // On the driver's own page, its devices' tokens are offered (its status is readable from here only).
  function offerTokens() {
    if (mode !== "driver") return;
    fetch("/status").then(function (r) { return r.json(); }).then(function (state) {
      (state.devices || []).forEach(function (device) {
        var list = $(device.role === "bnk" ? "bnk-tokens" : "kkt-tokens");
        list.appendChild(el("option", {value: device.token}, device.name));
        var input = $(device.role === "bnk" ? "bnk" : "kkt");
        if (!input.value && list.children.length === 1) input.value = device.token;
      });
    }).catch(function () { /* the tokens are typed in then */ });
  }

  // --- presets and the editor ----------------------------------------------------------------------------------
  function loadPresets() {
    var version = (document.querySelector("script[src*='test_page.js']").src.split("?v=")[1]) || "";
    return fetch("/static/presets.json?v=" + version).then(function (r) { return r.json(); }).then(function (list) {
      presets = list;
      list.forEach(function (preset) { $("preset").appendChild(el("option", {value: preset.key})); });
      labelPresets();
      var wanted = new URLSearchParams(location.search).get("preset");
      choosePreset(list.some(function (p) { return p.key === wanted; }) ? wanted : "example", true);
    });
  }
  // An <option> holds text only, so it is written in the chosen language (again when the language changes).
  function labelPresets() {
    var lang = window.kktbridgeLang ? window.kktbridgeLang.current() : "ru";
    Array.prototype.forEach.call($("preset").options, function (option, index) {
      var preset = presets[index];
      option.textContent = (lang === "en" ? preset.en : preset.ru) + (preset.cloud ? "" : " · bnk");
    });
  }
  // A preset chosen: its packet and header style, and a new order id (a new packet needs one), except the first
  // one on loading, which keeps a BIT_ORDER_ID given in the address.
  function choosePreset(key, loading) {
    var preset = presets.filter(function (p) { return p.key === key; })[0];
    if (!preset) return;
    $("preset").value = key;
    $("packet").value = window.kktbridgeJson.pretty(preset.packet);
    $("style").value = preset.style;
    if (!loading) newOrder();
    check();
  }
  function current() { return presets.filter(function (p) { return p.key === $("preset").value; })[0]; }

  // The packet as the driver will read it: a JSON array of {name, type, data} commands. null and a message if not.
  function check() {
    var text = $("packet").value, state = $("packet-state"), value;
    state.textContent = "";
    state.className = "hint";
    try {
      encodeURIComponent(text);  // both encodings of the request need it: a lone surrogate cannot be sent
    } catch (e) {
      return problem("в тексте есть символ, которого нет в UTF-8 (одиночный суррогат)",
                     "the text holds a character UTF-8 cannot carry (a lone surrogate)");
    }
    try {
      value = JSON.parse(text);
    } catch (e) {
      var where = /position (\d+)/.exec(String(e.message)), at = "";
      if (where) {
        var before = text.slice(0, Number(where[1])).split("\n");
        at = " (" + before.length + ":" + (before[before.length - 1].length + 1) + ")";
      }
      return problem("в JSON ошибка" + at + ": " + e.message, "the JSON is not valid" + at + ": " + e.message);
    }
    if (!Array.isArray(value) || !value.length) {
      return problem("пакет — непустой JSON-массив команд [{name, type, data}, …]",
                     "a packet is a non-empty JSON array of commands [{name, type, data}, …]");
    }
    for (var i = 0; i < value.length; i++) {
      var command = value[i];
      if (!command || typeof command !== "object" || Array.isArray(command) || typeof command.type !== "string") {
        return problem("команда [" + i + "]: нужен объект с полями name, type и data",
                       "command [" + i + "]: an object with name, type and data is expected");
      }
    }
    state.className = "hint ok";
    state.appendChild(bi("JSON верный: команд " + value.length, "valid JSON: " + value.length + " command(s)"));
    return value;

    function problem(ru, en) {
      state.className = "hint bad";
      state.appendChild(bi(ru, en));
      return null;
    }
  }

  // --- the local driver -----------------------------------------------------------------------------------------
  function driverUrl() {
    var text = $("driver").value.trim().replace(/\/+$/, "");
    try {
      var url = new URL(text);
      if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
    } catch (e) { /* below */ }
    return null;
  }

  // The request as the vendor's pages send it: 1.3+ as the 2025 page (BIT_* headers, the body
  // encodeURIComponent(json)), 1.2 as the Bitrix module (each token a header name, `json=` form body).
  function request(text, style) {
    var headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
                   "BIT_ORDER_ID": $("order").value.trim()};
    var kkt = $("kkt").value.trim(), bnk = $("bnk").value.trim();
    if (style === "1.2") {
      headers.Action = "toLocalhost";
      if (kkt) headers[kkt] = "1";
      if (bnk) headers[bnk] = "1";
      return {headers: headers, body: "json=" + encodeURIComponent(text).replace(/%20/g, "+")};
    }
    headers.Action = "command_list";
    headers.BIT_ENCODE_TYPE = "JS";
    if (kkt) headers.BIT_KKT_TOKEN = kkt;
    if (bnk) headers.BIT_BNK_TRM_TOKEN = bnk;
    return {headers: headers, body: encodeURIComponent(text)};
  }

  function runLocal() {
    var commands = check(), url = driverUrl(), text = $("packet").value;
    if (!commands) return show("error", "Пакет не отправлен: исправьте JSON (см. под полем).",
                               "The packet was not sent: fix the JSON (see below the field).");
    if (!url) return show("error", "Адрес драйвера — http:// или https:// с именем хоста, например http://localhost:44735",
                          "The driver URL is http:// or https:// with a host, e.g. http://localhost:44735");
    var sent = request(text, $("style").value);
    busy(true);
    clearResults();
    show("notice", "Отправлено драйверу " + url + "…", "Sent to the driver at " + url + "…");
    fetch(url + "/", {method: "POST", headers: sent.headers, body: sent.body, mode: "cors", credentials: "omit"})
      .then(function (response) {
        var timing = window.kktbridgeJson.timing(response.headers.get("Server-Timing"));
        return response.text().then(function (body) { answered(body, commands, timing, url); });
      }, function () { return refused(url); })
      .finally(function () { busy(false); });
  }

  // The fetch failed without an answer the page may read: either nothing listens there, or the driver answered
  // the browser's CORS check with a refusal (this page's origin is not allowed). A no-cors request tells which:
  // any answer at all (opaque) means a server listens. It asks for /favicon.ico, as every browser does, since
  // the answers to a few paths (the status page) are not readable even opaquely from another origin.
  function refused(url) {
    return fetch(url + "/favicon.ico", {mode: "no-cors", credentials: "omit", cache: "no-store"}).then(function () {
      var origin = location.origin;
      var how = el("ul", {},
        el("li", {}, bi("в кабинете облака: раздел «Разрешённые сайты» — добавьте " + origin +
                        "; облако передаст список связанному драйверу;",
                        "in the cloud's cabinet: «Allowed origins» — add " + origin +
                        "; the cloud passes the list on to the linked driver;")),
        el("li", {}, bi("или в файле настроек драйвера: [cors] allowed_origins = [\"" + origin +
                        "\"] (см. config.example.toml), затем перезапустите драйвер;",
                        "or in the driver's config file: [cors] allowed_origins = [\"" + origin +
                        "\"] (see config.example.toml), then restart the driver;")),
        el("li", {}, bi("для демонстрации: kktbridge demo --allow-origin " + origin,
                        "for the demo: kktbridge demo --allow-origin " + origin)));
      show("error", "Драйвер " + url + " отказал этой странице: сайт " + origin + " не разрешён (CORS). " +
           "Разрешите его:", "The driver at " + url + " refused this page: the site " + origin +
           " is not allowed (CORS). Allow it:", how);
      $("message").setAttribute("data-problem", "origin_not_allowed");
    }, function () {
      show("error", "Драйвер по адресу " + url + " не отвечает: он запущен? Адрес и порт верны?",
           "No driver answers at " + url + ": is it running? Are the address and port right?");
      $("message").setAttribute("data-problem", "unreachable");
    });
  }

  function answered(body, commands, timing, url) {
    var value;
    try { value = JSON.parse(body); } catch (e) { value = null; }
    $("answer").textContent = value === null ? body : window.kktbridgeJson.pretty(body);
    if (value === null) return show("error", "Ответ не JSON", "The answer is not JSON");
    if (!Array.isArray(value)) return packetRefused(value);
    var failed = value.some(function (r) { return r && r.error; });
    show(failed ? "error" : "", failed ? "Пакет выполнен с ошибкой" : "Пакет выполнен",
         failed ? "The packet failed" : "The packet ran", timing ? el("p", {class: "muted"}, timing) : null);
    renderResults(commands, value);
  }

  function packetRefused(value) {
    var list = el("ul", {class: "problems"});
    (value.fields || []).forEach(function (field) {
      list.appendChild(el("li", {}, el("code", {}, field.path || ""), " ", bi(field.ru || "", field.en || "")));
    });
    show("error", value.errorRu || value.error || "отказ", value.errorEn || value.error || "refused",
         list.children.length ? list : null);
    $("message").setAttribute("data-problem", value.errorCode || "refused");
  }

  // --- results --------------------------------------------------------------------------------------------------
  function clearResults() {
    $("results").textContent = "";
    $("answer").textContent = "";
    $("progress").hidden = true;
    $("message").removeAttribute("data-problem");
  }

  function renderResults(commands, results) {
    var box = $("results");
    box.textContent = "";
    var paidByCard = results.some(function (r) { return r && r.type === "bnkCardPayment" && r.success; });
    results.forEach(function (result, index) {
      if (!result || typeof result !== "object") return;
      var command = commands[index] || {};
      var card = el("article", {class: "command", "data-command": String(index)});
      var main = el("div", {});
      main.appendChild(el("h3", {}, (result.name || command.name || "#" + index) + " ",
                          el("span", {class: "muted"}, result.type || command.type || "")));
      main.appendChild(el("p", {class: result.error ? "bad" : "ok", "data-outcome": result.error ? "error" : "success"},
                          result.error || result.success || ""));
      var fields = el("dl", {class: "fields"});
      Object.keys(result).forEach(function (key) {
        var value = result[key];
        if (HIDDEN[key] || value === null || typeof value === "object") return;
        var label = LABELS[key];
        fields.appendChild(el("dt", {}, label ? bi(label[0], label[1]) : key));
        var text = MONEY[key] && typeof value === "number" ? value.toFixed(2) : String(value);
        fields.appendChild(el("dd", {"data-field": key}, text));
      });
      if (fields.children.length) main.appendChild(fields);
      if (Array.isArray(result.warnings) && result.warnings.length) {
        var notes = el("ul", {class: "warnings"});
        result.warnings.forEach(function (w) {
          notes.appendChild(el("li", {class: "warn", "data-warning": w.code || ""}, bi(w.ru || "", w.en || ""), " ",
                               el("code", {class: "muted"}, w.path || "")));
        });
        main.appendChild(el("p", {}, bi("Исправлено драйвером:", "Adjusted by the driver:")));
        main.appendChild(notes);
      }
      if (result.slip) main.appendChild(el("pre", {class: "slip"}, result.slip));
      if (result.qr) {
        main.appendChild(el("img", {class: "qr-image", alt: "QR " + result.qr, "data-qr": result.qr,
                                    src: "/qr.svg?t=" + encodeURIComponent(result.qr)}));
      }
      card.appendChild(main);
      if ((result.type || command.type) === "kktReceiptFiscalization") {
        card.appendChild(window.kktbridgeReceipt.render(command, result, {qr: "/qr.svg", card: paidByCard}));
      }
      box.appendChild(card);
    });
  }

  // --- the cloud: the signed form, then the receipt followed live -----------------------------------------------
  function sendCloud() {
    var commands = check(), text = $("packet").value;
    if (!commands) return show("error", "Пакет не отправлен: исправьте JSON (см. под полем).",
                               "The packet was not sent: fix the JSON (see below the field).");
    var f = {account: $("account").value.trim(), kkt: $("kkt").value.trim(), order: $("order").value.trim(),
             success: $("success").value.trim(), failed: $("failed").value.trim(), code: $("code").value};
    if (!/^\d+$/.test(f.account)) return show("error", "Укажите номер аккаунта (BIT_ACCOUNT_ID) из кабинета",
                                              "Enter the account id (BIT_ACCOUNT_ID) from the cabinet");
    if (commands.some(function (c) { return /^bnk/.test(c.type); })) {
      return show("error", "Оплата картой требует человека у терминала, а чек из облака пробивается без него: " +
                  "выберите пример без bnk-команд (например «Только чек»).",
                  "A card payment needs a person at the terminal, and a cloud receipt is printed with nobody " +
                  "there: choose a preset without bnk commands (e.g. «Receipt only»).");
    }
    // md5(account + token + order + the JSON text + success + failed + integrity code), as the vendor's page signs.
    var signature = window.kktbridgeMd5(f.account + f.kkt + f.order + text + f.success + f.failed + f.code);
    var form = new URLSearchParams();
    form.set("BIT_ACCOUNT_ID", f.account);
    form.set("BIT_KKT_TOKEN", f.kkt);
    if ($("bnk").value.trim()) form.set("BIT_BNK_TRM_TOKEN", $("bnk").value.trim());
    form.set("BIT_ORDER_ID", f.order);
    form.set("BIT_DATA", btoa(encodeURIComponent(text)));
    form.set("BIT_SIGNATURE", signature);
    if (f.success) form.set("BIT_CALLBACK_SUCCESS", f.success);
    if (f.failed) form.set("BIT_CALLBACK_FAILED", f.failed);
    busy(true);
    clearResults();
    show("notice", "Форма отправлена в облако…", "The form was sent to the cloud…");
    fetch(FORM, {method: "POST", body: form, credentials: "omit"}).then(function (response) {
      return response.text();
    }).then(function (body) {
      var value;
      try { value = JSON.parse(body); } catch (e) { value = null; }
      $("answer").textContent = value === null ? body : window.kktbridgeJson.pretty(body);
      if (!value || value.result !== true || !value.receipt) {
        busy(false);
        return value ? packetRefused(value) : show("error", "Ответ облака не JSON", "The cloud's answer is not JSON");
      }
      follow(value.receipt.id, f.account, commands, Date.now());
    }, function (e) {
      busy(false);
      show("error", "Облако не ответило: " + e, "The cloud did not answer: " + e);
    });
  }

  // Poll the receipt's state (GET /api/fiscal/receipt-state/<id>?account=…: only its state and result, for whoever
  // holds the receipt's unguessable id) until it is final; every second at first, then less often.
  function follow(id, account, commands, started) {
    var seen = {};
    progress("queued", seen);
    show("notice", "Чек " + id + " в очереди облака: ждём драйвер…", "Receipt " + id + " is queued in the cloud: " +
         "waiting for the driver…");
    $("message").setAttribute("data-receipt", id);
    function poll() {
      fetch("/api/fiscal/receipt-state/" + encodeURIComponent(id) + "?account=" + encodeURIComponent(account),
            {credentials: "omit", cache: "no-store"}).then(function (r) { return r.json(); }).then(function (state) {
        progress(state.state, seen);
        if (!state.final && state.state !== "unknown") return later();
        if (state.state === "unknown") {
          show("notice", "Исход чека неизвестен: драйвер сообщит его, облако не повторит чек вслепую.",
               "The receipt's outcome is unknown: the driver will report it; the cloud never repeats it blindly.");
          return later();
        }
        busy(false);
        $("answer").textContent = window.kktbridgeJson.pretty(JSON.stringify(state));
        if (Array.isArray(state.result)) {
          var failed = state.result.some(function (r) { return r && r.error; });
          show(failed ? "error" : "", failed ? "Облако: чек не пробит" : "Облако: чек пробит",
               failed ? "The cloud: the receipt failed" : "The cloud: the receipt is done");
          renderResults(commands, state.result);
        } else {
          var error = state.error || {};
          show("error", "Облако: " + (STATE_NAMES[state.state] || [state.state])[0] + ". " + (error.ru || ""),
               "The cloud: " + (STATE_NAMES[state.state] || [0, state.state])[1] + ". " + (error.en || ""));
        }
        $("message").setAttribute("data-state", state.state);
      }).catch(later);
    }
    function later() { setTimeout(poll, Date.now() - started < 30000 ? 700 : 3000); }
    poll();
  }

  // queued → delivered → done (or failed, expired, unknown): the steps reached so far are marked.
  function progress(state, seen) {
    var list = $("progress"), last = STATES.indexOf(state) >= 0 ? "done" : state;
    var steps = ["queued", "delivered", last], at = steps.indexOf(state);
    seen[state] = true;
    list.hidden = false;
    list.textContent = "";
    steps.forEach(function (step, index) {
      var reached = seen[step] || index < at, names = STATE_NAMES[step] || [step, step];
      var css = reached ? (index === 2 && step !== "done" ? "bad" : "reached") : "";
      list.appendChild(el("li", {"data-step": step, class: css}, bi(names[0], names[1])));
    });
  }

  // --- wiring ---------------------------------------------------------------------------------------------------
  prefill();
  offerTokens();
  loadPresets();
  $("new-order").addEventListener("click", newOrder);
  $("preset").addEventListener("change", function () { choosePreset($("preset").value); });
  $("packet").addEventListener("input", check);
  $("run-local").addEventListener("click", runLocal);
  $("send-cloud").addEventListener("click", sendCloud);
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-set-lang]")) setTimeout(labelPresets, 0);
  });
  window.kktbridgeTestPage = {choosePreset: choosePreset, current: current, check: check};
})();
