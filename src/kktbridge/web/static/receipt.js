// A preview of the paper receipt, drawn from a kktReceiptFiscalization command (what the shop sent) and its result
// (what the register answered: document numbers, fiscal sign, QR). Standalone: any kktbridge page that has both
// loads this file (and receipt.css) and calls kktbridgeReceipt.render(command, result, {qr: "/qr.svg"}).
// It only shows; the register's own tape is the truth. The paper is in Russian, as the register prints it.
(function () {
  "use strict";

  var TYPES = {0: "ПРИХОД", 1: "ПРИХОД", 2: "ВОЗВРАТ ПРИХОДА", 3: "РАСХОД", 4: "ВОЗВРАТ РАСХОДА"};
  var VAT = {1: "НДС 20%", 2: "НДС 10%", 3: "НДС 20/120", 4: "НДС 10/110", 5: "НДС 0%", 6: "БЕЗ НДС",
             7: "НДС 5%", 8: "НДС 7%", 9: "НДС 5/105", 10: "НДС 7/107"};
  var PAYMENTS = [[1031, "НАЛИЧНЫМИ"], [1081, "БЕЗНАЛИЧНЫМИ"], [1215, "ПРЕДОПЛАТА (АВАНС)"],
                  [1216, "ПОСТОПЛАТА (КРЕДИТ)"], [1217, "ВСТРЕЧНОЕ ПРЕДОСТАВЛЕНИЕ"]];
  // Tag 1055 as BIT clients send it: the index 0–5, or a mask 8/16/32 no index can mean (fiscal/codes.py).
  var TAXATION = {0: "ОСН", 1: "УСН доход", 2: "УСН доход − расход", 3: "ЕНВД", 4: "ЕСХН", 5: "ПСН", 8: "ЕНВД",
                  16: "ЕСХН", 32: "ПСН"};

  // The value of a tag-suffixed key (`price_1079`, `1079`): the tag is what follows the last "_".
  function tag(object, number) {
    if (!object || typeof object !== "object") return undefined;
    var found;
    Object.keys(object).forEach(function (key) {
      if (key === String(number) || key.slice(key.lastIndexOf("_") + 1) === String(number)) found = object[key];
    });
    return found;
  }

  // The items in any of the three shapes: `purchases`, `"1059": [...]`, `"<x>_1059": {...}` (one per key).
  function items(data) {
    var out = [];
    Object.keys(data || {}).forEach(function (key) {
      var value = data[key];
      if (key === "purchases" || key === "1059" || /_1059$/.test(key)) {
        out = out.concat(Array.isArray(value) ? value : [value]);
      }
    });
    return out.filter(function (item) { return item && typeof item === "object"; });
  }

  function money(value) {
    var number = Number(value);
    return isFinite(number) ? number.toFixed(2).replace(".", ",") : "—";
  }

  function node(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  function line(left, right, className) {
    var row = node("div", "receipt-line" + (className ? " " + className : ""));
    row.appendChild(node("span", null, left));
    row.appendChild(node("span", null, right));
    return row;
  }

  function render(command, result, options) {
    options = options || {};
    var data = (command && command.data) || {}, res = result || {};
    var paper = node("div", "receipt-paper");
    paper.setAttribute("data-receipt", "");
    var typeCode = tag(res, 1054) !== undefined ? tag(res, 1054) : tag(data, 1054);
    paper.appendChild(node("div", "receipt-center receipt-strong", "КАССОВЫЙ ЧЕК"));
    paper.appendChild(node("div", "receipt-center", TYPES[typeCode] || "ПРИХОД"));
    var computed = 0;
    items(data).forEach(function (item, index) {
      var qty = Number(tag(item, 1023) !== undefined ? tag(item, 1023) : 1);
      var price = Number(tag(item, 1079) !== undefined ? tag(item, 1079) : (item.sum || 0) / (qty || 1));
      var amount = Math.round(price * qty * 100) / 100;
      computed += amount;
      paper.appendChild(node("div", "receipt-item", (index + 1) + ". " + (tag(item, 1030) || "—")));
      paper.appendChild(line("  " + String(qty).replace(".", ",") + " × " + money(price), "= " + money(amount)));
      var vat = VAT[tag(item, 1199)];
      if (vat) paper.appendChild(line("  " + vat, "", "receipt-muted"));
      if (tag(item, 2000) !== undefined || item.markirovka) paper.appendChild(line("  [М] маркированный товар", ""));
    });
    var total = tag(res, 1020) !== undefined ? tag(res, 1020) : computed;
    paper.appendChild(line("ИТОГ", "≡ " + money(total), "receipt-strong receipt-total"));
    var payments = data.payments || {};
    var paid = false;
    PAYMENTS.forEach(function (pair) {
      var value = Number(tag(payments, pair[0]) || 0);
      if (value) { paper.appendChild(line(pair[1], "≡ " + money(value))); paid = true; }
    });
    if (!paid && options.card) paper.appendChild(line("БЕЗНАЛИЧНЫМИ", "≡ " + money(total)));
    var taxation = tag(data, 1055);
    if (taxation !== undefined) paper.appendChild(line("СНО", TAXATION[taxation] || String(taxation)));
    var cashier = tag(data, 1021);
    if (cashier) paper.appendChild(line("Кассир", cashier));
    var email = tag(data, 1008);
    if (email) paper.appendChild(line("Покупатель", email));
    if (tag(res, 1040) !== undefined) {
      paper.appendChild(node("div", "receipt-rule"));
      [["Дата", tag(res, 1012) ? String(tag(res, 1012)).replace("T", " ") : ""], ["Смена", tag(res, 1038)],
       ["Чек №", tag(res, 1042)], ["РН ККТ", tag(res, 1037)], ["ФН", tag(res, 1041)], ["ФД", tag(res, 1040)],
       ["ФП", tag(res, 1077)]].forEach(function (pair) {
        if (pair[1] !== undefined && pair[1] !== "") paper.appendChild(line(pair[0], pair[1]));
      });
      paper.appendChild(line("Сайт ФНС", "www.nalog.gov.ru", "receipt-muted"));
    } else if (res.error) {
      paper.appendChild(node("div", "receipt-center receipt-void", "НЕ ПРОБИТ"));
    }
    if (res.qr && options.qr) {
      var image = node("img", "receipt-qr");
      image.alt = "QR";
      image.src = options.qr + "?t=" + encodeURIComponent(res.qr);
      paper.appendChild(image);
    }
    return paper;
  }

  window.kktbridgeReceipt = {render: render, items: items, tag: tag};
})();
