// The cabinet's live parts (issue 14); the pages themselves are rendered by the server (cloud/cabinet*.py).
// - devices: every 3 s, while visible, the cells [data-cell] take their text from /cabinet/state.json, which
//   the server renders with the same function as the page;
// - receipt: the callbacks section from GET /api/v1/receipts/{id}/callbacks, looked at again every 2 s while one
//   is still due, and its "resend" button;
// - courier: the form posts to /api/v1/courier/receipts and follows the receipt until it ends.
// Changes carry the session's CSRF token (the page's <meta name="csrf-token">) as X-CSRF-Token.
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function el(tag, cls, ru, en) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (ru !== undefined) {
      var r = document.createElement("span"); r.setAttribute("lang", "ru"); r.textContent = ru;
      var e = document.createElement("span"); e.setAttribute("lang", "en"); e.textContent = en === undefined ? ru : en;
      node.appendChild(r); node.appendChild(e);
    }
    return node;
  }

  function call(method, url, body) {
    var headers = {"Accept": "application/json"};
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {method: method, headers: headers, credentials: "same-origin",
                       body: body === undefined ? undefined : body}).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return {status: response.status, data: data};
      });
    });
  }

  // Buttons that change a secret ask first.
  document.addEventListener("submit", function (event) {
    var confirmable = event.target.querySelector("[data-confirm]");
    if (confirmable && !window.confirm(document.documentElement.getAttribute("data-lang") === "en"
        ? "The old one stops working. Continue?" : "Старый перестанет работать. Продолжить?")) {
      event.preventDefault();
    }
  });

  // --- devices: live state -----------------------------------------------------------------------------------
  if (page === "devices") {
    var line = document.getElementById("live-line");
    var refresh = function () {
      if (document.hidden) return;
      call("GET", "/cabinet/state.json").then(function (answer) {
        if (answer.status === 401) {  // the session ended: stop polling with a dead cookie, and sign in again
          clearInterval(timer);
          window.location.assign("/cabinet/sign-in");
          return;
        }
        if (answer.status !== 200 || !answer.data) return;
        var cells = answer.data.cells;
        Object.keys(cells).forEach(function (key) {
          var node = document.querySelector('[data-cell="' + key + '"]');
          if (!node) return;
          var cell = cells[key];
          node.className = cell.cls;
          node.querySelector('[lang="ru"]').textContent = cell.ru;
          node.querySelector('[lang="en"]').textContent = cell.en;
        });
        if (line) line.setAttribute("data-at", answer.data.at);
      }).catch(function () { /* the next tick tries again */ });
    };
    var timer = setInterval(refresh, 3000);
  }

  // --- receipt: callbacks ------------------------------------------------------------------------------------
  if (page === "receipt") {
    var section = document.getElementById("callbacks");
    var list = document.getElementById("callbacks-list");
    var resend = document.getElementById("resend");
    var resendResult = document.getElementById("resend-result");
    var base = "/api/v1/receipts/" + encodeURIComponent(section.getAttribute("data-receipt")) + "/callbacks";
    var again = null;  // the next look while a callback is still due: the page follows it without a reload
    var show = function (answer) {
      list.textContent = "";
      var items = answer.status === 200 && answer.data && answer.data.callbacks ? answer.data.callbacks : [];
      clearTimeout(again);
      if (items.some(function (cb) { return cb.state === "pending"; })) again = setTimeout(load, 2000);
      if (!items.length) {
        list.appendChild(el("p", "muted none", "нет обратных вызовов", "no callbacks"));
        resend.hidden = true;
        return;
      }
      var table = document.createElement("table");
      table.id = "callbacks-table";
      items.forEach(function (cb) {
        var row = table.insertRow();
        [cb.kind, cb.url, cb.state, String(cb.attempts), cb.deliveredAt || cb.nextAt || "", cb.lastError || ""]
          .forEach(function (text) { row.insertCell().textContent = text; });
        (cb.tries || []).forEach(function (t) {
          var sub = table.insertRow(); sub.className = "try muted";
          sub.insertCell();
          var c = sub.insertCell(); c.colSpan = 5;
          c.textContent = t.at + " · " + (t.status === null ? "—" : t.status) + " · " + t.durationMs + " ms" +
            (t.error ? " · " + t.error : "");
        });
      });
      list.appendChild(table);
      resend.hidden = false;
    };
    var load = function () { return call("GET", base).then(show).catch(function () { show({status: 0}); }); };
    resend.addEventListener("click", function () {
      resend.disabled = true;
      call("POST", base + "/resend", "{}").then(function (answer) {
        resendResult.textContent = answer.status === 200 && answer.data ? "↻ " + answer.data.resent
          : (answer.data && answer.data.error ? answer.data.error.code : String(answer.status));
        return load();
      }).finally(function () { resend.disabled = false; });
    });
    load();
  }

  // --- courier ------------------------------------------------------------------------------------------------
  if (page === "courier") {
    var form = document.getElementById("courier-form");
    var out = document.getElementById("courier-result");
    var button = document.getElementById("courier-send");
    var packet = document.getElementById("courier-packet");
    var orderField = document.getElementById("courier-order");
    if (window.kktbridgeJson) packet.value = window.kktbridgeJson.pretty(packet.value);
    // The order id is made here, before sending, and changes only after the cloud took the receipt: a retry after
    // a lost answer sends the same id, and the cloud answers with the receipt it has rather than a second one.
    var newOrder = function () {
      var bytes = new Uint8Array(8);
      crypto.getRandomValues(bytes);
      orderField.value = "courier-" + Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2); }).join("");
    };
    if (!orderField.value) newOrder();
    var render = function (receipt) {
      out.textContent = "";
      var head = el("p", "state");
      head.appendChild(el("b", "", "Состояние: ", "State: "));
      var state = document.createElement("code"); state.id = "courier-state"; state.textContent = receipt.state;
      head.appendChild(state);
      var link = document.createElement("a"); link.href = "/cabinet/receipts/" + receipt.id; link.textContent = " " + receipt.id;
      head.appendChild(link);
      out.appendChild(head);
      var p = receipt.payload;
      if (p) {
        var fields = el("p", "ok");
        fields.id = "courier-fd";
        fields.textContent = "ФД / FD " + p.fiscal_document_number + " · ФП / FS " + p.fiscal_document_attribute +
          " · " + p.receipt_datetime + " · " + Number(p.total).toFixed(2);
        out.appendChild(fields);
        if (p.qr) {
          var img = document.createElement("img");
          img.alt = "QR"; img.className = "qr"; img.src = "/qr.svg?t=" + encodeURIComponent(p.qr);
          out.appendChild(img);
        }
      }
      if (receipt.error) out.appendChild(el("p", "bad", receipt.error.ru, receipt.error.en));
      (receipt.result || []).forEach(function (r) {
        if (r && r.error) out.appendChild(el("p", "bad", r.errorRu || r.error, r.errorEn || r.error));
      });
    };
    var refusal = function (error) {
      out.textContent = "";
      var box = el("div", "error-box");
      box.id = "courier-error";
      box.appendChild(el("p", "", error.ru, error.en));
      (error.fields || []).forEach(function (f) {
        var item = el("p", "", f.path + ": " + f.ru, f.path + ": " + f.en);
        box.appendChild(item);
      });
      out.appendChild(box);
    };
    var follow = function (id, rounds) {
      call("GET", "/api/v1/receipts/" + id + "?wait=10").then(function (answer) {
        if (answer.status !== 200) { refusal(answer.data && answer.data.error || {ru: String(answer.status), en: String(answer.status)}); return; }
        render(answer.data);
        var final = ["done", "failed", "expired"].indexOf(answer.data.state) >= 0;
        if (!final && rounds > 0) follow(id, rounds - 1);
      });
    };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      try { JSON.parse(document.getElementById("courier-packet").value); } catch (e) {
        refusal({ru: "пакет — не JSON: " + e.message, en: "the packet is not JSON: " + e.message}); return;
      }
      if (!orderField.value.trim()) newOrder();
      var order = orderField.value.trim();
      button.disabled = true;
      // The packet goes as the user wrote it (11.00 stays 11.00); JSON.parse above only checked it.
      var text = '{"device_id":' + Number(document.getElementById("courier-device").value) +
        (order ? ',"order_id":' + JSON.stringify(order) : "") +
        ',"commands":' + document.getElementById("courier-packet").value + "}";
      call("POST", "/api/v1/courier/receipts", text).then(function (answer) {
        if (answer.status === 201 || answer.status === 200) {
          render(answer.data); follow(answer.data.id, 30); newOrder();
        }
        else refusal(answer.data && answer.data.error || {ru: String(answer.status), en: String(answer.status)});
      }).catch(function (e) { refusal({ru: String(e), en: String(e)}); })
        .finally(function () { button.disabled = false; });
    });
  }
})();
