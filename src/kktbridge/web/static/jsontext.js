// JSON text indented as it is, for the pages' editors and answers: numbers keep their digits (12.00 stays 12.00,
// which JSON.parse would make 12), so what a page shows and sends is what the shop wrote.
(function () {
  "use strict";
  function pretty(text) {
    var out = "", depth = 0, i, c, next;
    function newline(n) { return "\n" + "  ".repeat(n); }
    for (i = 0; i < text.length; i++) {
      c = text[i];
      if (c === '"') {
        var end = i + 1;
        while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
        out += text.slice(i, end + 1);
        i = end;
      } else if (c === "{" || c === "[") {
        next = text.slice(i + 1).trimStart()[0];
        if (next === "}" || next === "]") { out += c + next; i = text.indexOf(next, i + 1); }
        else { depth += 1; out += c + newline(depth); }
      } else if (c === "}" || c === "]") { depth -= 1; out += newline(depth) + c; }
      else if (c === ",") out += "," + newline(depth);
      else if (c === ":") out += ": ";
      else if (!/\s/.test(c)) out += c;
    }
    return out;
  }

  // Server-Timing "device;dur=3.2, total;dur=4.1" → "устройство / device 3.2 мс / ms, всего / total 4.1 мс / ms".
  function timing(header) {
    var names = {device: "устройство / device", total: "всего / total"};
    return (header || "").split(",").map(function (part) {
      var pieces = part.trim().split(";dur=");
      return pieces.length === 2 ? (names[pieces[0]] || pieces[0]) + " " + Number(pieces[1]).toFixed(1) +
        " мс / ms" : "";
    }).filter(Boolean).join(", ");
  }

  window.kktbridgeJson = {pretty: pretty, timing: timing};
})();
