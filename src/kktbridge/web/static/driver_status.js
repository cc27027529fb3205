// The driver's status page (web/driver_status.html, rendered by driver/status.py): the example's Run button, and
// the page keeping itself current. Every few seconds, while the tab is visible, it asks /status; when anything
// changed (a packet, a device's state, the cloud link), it takes the fresh sections (LIVE) from the page
// itself, so the server stays the one renderer.
(function () {
  "use strict";
  var EVERY = 3000;
  var json = window.kktbridgeJson;
  var last = null;
  var LIVE = ["devices", "cloud", "doubt", "packets"];


  function refreshSections() {
    return fetch("/", {cache: "no-store"}).then(function (r) { return r.text(); }).then(function (text) {
      var page = new DOMParser().parseFromString(text, "text/html");
      LIVE.forEach(function (id) {
        var fresh = page.getElementById(id);
        if (fresh) document.getElementById(id).innerHTML = fresh.innerHTML;  // the driver's own, escaped there
      });
    });
  }

  // The line above the devices, in both languages (base.css shows the chosen one).
  function say(ru, en) {
    var live = document.getElementById("live");
    live.textContent = "";
    [["ru", ru], ["en", en]].forEach(function (pair) {
      var span = document.createElement("span");
      span.lang = pair[0];
      span.textContent = pair[1];
      live.appendChild(span);
    });
  }

  function tick() {
    if (document.visibilityState === "hidden") return setTimeout(tick, EVERY);
    fetch("/status", {cache: "no-store"}).then(function (r) { return r.text(); }).then(function (now) {
      var changed = last !== null && now !== last;
      last = now;
      say("обновлено " + new Date().toLocaleTimeString("ru"), "updated " + new Date().toLocaleTimeString("en"));
      return changed ? refreshSections() : null;
    }).catch(function (e) {
      say("драйвер не отвечает: " + e, "the driver does not answer: " + e);
    }).finally(function () { setTimeout(tick, EVERY); });
  }

  var packet = document.getElementById("packet");
  packet.value = json.pretty(packet.value);
  document.getElementById("send").addEventListener("click", function () {
    var state = document.getElementById("state");
    state.textContent = "…";
    var headers = {"Action": "command_list", "BIT_ORDER_ID": String(Date.now())};
    var kkt = document.getElementById("kkt").value, bnk = document.getElementById("bnk").value;
    if (kkt) headers.BIT_KKT_TOKEN = kkt;
    if (bnk) headers.BIT_BNK_TRM_TOKEN = bnk;
    fetch("/", {method: "POST", body: packet.value, headers: headers}).then(function (response) {
      return response.text().then(function (text) {
        document.getElementById("answer").textContent = json.pretty(text);
        state.textContent = json.timing(response.headers.get("Server-Timing"));
        return refreshSections();
      });
    }).catch(function (e) { state.textContent = String(e); });
  });
  tick();
})();
