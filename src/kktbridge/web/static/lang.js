// The language switch of every kktbridge page. A page carries both languages side by side
// (<span lang="ru">…</span><span lang="en">…</span>, or data-ru/data-en on inputs' placeholders and titles);
// base.css hides the one not chosen by <html data-lang>. Russian is the default; the choice is remembered.
(function () {
  "use strict";
  var KEY = "kktbridge.lang";
  function choose(lang) {
    if (lang !== "en") lang = "ru";
    document.documentElement.setAttribute("data-lang", lang);
    document.documentElement.setAttribute("lang", lang);
    var nodes = document.querySelectorAll("[data-ru][data-en]");
    for (var i = 0; i < nodes.length; i++) {
      var text = nodes[i].getAttribute("data-" + lang);
      if (nodes[i].hasAttribute("placeholder")) nodes[i].setAttribute("placeholder", text);
      else nodes[i].setAttribute("title", text);
    }
    try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode: the choice lasts for this page */ }
  }
  var query = /[?&]lang=(ru|en)\b/.exec(location.search);
  var saved = null;
  try { saved = localStorage.getItem(KEY); } catch (e) { saved = null; }
  choose(query ? query[1] : saved || document.documentElement.getAttribute("data-lang") || "ru");
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-set-lang]") : null;
    if (button) { event.preventDefault(); choose(button.getAttribute("data-set-lang")); }
  });
  window.kktbridgeLang = { choose: choose, current: function () {
    return document.documentElement.getAttribute("data-lang"); } };
})();
