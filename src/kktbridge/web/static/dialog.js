// The progress page of the vendor's browser dialogs (cloud/dialogs.py): polls the receipt's state and, once it is
// final, posts the result as a form to the shop's BIT_CALLBACK_SUCCESS or BIT_CALLBACK_FAILED (the browser goes
// there). No inline handlers: the page's policy allows scripts from /static only.
(function () {
  "use strict";
  var main = document.getElementById("dialog");
  var kind = main.getAttribute("data-kind");
  var shows = document.querySelectorAll("[data-show]");
  for (var i = 0; i < shows.length; i++) shows[i].hidden = shows[i].getAttribute("data-show") !== kind;
  var state = document.getElementById("state");
  function show(name) {
    state.setAttribute("data-state", name);
    var parts = state.querySelectorAll("[data-when]");
    for (var j = 0; j < parts.length; j++) parts[j].hidden = parts[j].getAttribute("data-when") !== name;
  }
  function sendOn(answer) {
    if (answer.error) {
      var box = document.getElementById("error");
      box.textContent = (answer.error.ru || "") + " / " + (answer.error.en || "");
      box.hidden = false;
    }
    if (!answer.action) return;
    var form = document.getElementById("send-on");
    form.action = answer.action;
    Object.keys(answer.fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = answer.fields[name];
      form.appendChild(input);
    });
    document.getElementById("going").hidden = false;
    setTimeout(function () { form.submit(); }, 600);
  }
  var wait = 300;
  function poll() {
    fetch(main.getAttribute("data-status"), {cache: "no-store", credentials: "omit"})
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (!answer.state) throw new Error("no state");
        show(answer.state);
        if (answer.final) sendOn(answer);
        else setTimeout(poll, wait);
      })
      .catch(function () { wait = Math.min(wait * 2, 5000); setTimeout(poll, wait); });
  }
  show(state.getAttribute("data-state"));
  poll();
})();
