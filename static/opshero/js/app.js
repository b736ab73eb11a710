// OpsHero page behaviour. No inline scripts: the content security policy forbids them.
(function () {
  "use strict";

  // Charts: <script type="application/json" data-plotly-for="ID"> holds a Plotly figure.
  function renderCharts(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("script[type='application/json'][data-plotly-for]").forEach(function (node) {
      var target = document.getElementById(node.dataset.plotlyFor);
      if (!target) return;
      var figure = JSON.parse(node.textContent);
      var config = Object.assign({ responsive: true, displaylogo: false }, figure.config || {});
      window.Plotly.react(target, figure.data || [], figure.layout || {}, config);
    });
  }

  // <form data-confirm="question"> asks before submitting (removing a member, retiring a key).
  function wireConfirm(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      if (form.dataset.confirmWired) return;
      form.dataset.confirmWired = "1";
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  // <select data-autosubmit> submits its form when it changes (filters); no inline handlers,
  // which the Content Security Policy blocks.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.matches && field.matches("[data-autosubmit]") && field.form) {
      field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
    }
  });

  // <button data-copy="#selector"> copies that element's value or text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    var text = source.value !== undefined && source.tagName === "INPUT" ? source.value : source.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      button.classList.add("btn-success");
      window.setTimeout(function () { button.classList.remove("btn-success"); }, 1200);
    });
  });

  // Polled panels (<div data-poll hx-trigger="every 15s, poll-now">) do not ask the server
  // while the tab is hidden, and catch up once when it is shown again. Done here rather than
  // with an hx-trigger filter ("every 15s [...]"), which htmx evaluates and the CSP forbids.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute && elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[data-poll]").forEach(function (elt) {
      window.htmx.trigger(elt, "poll-now");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    renderCharts(document);
    wireConfirm(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    // An outerHTML swap may report the element it replaced: fall back to the whole page.
    var root = event.target && event.target.isConnected ? event.target : document;
    renderCharts(root);
    wireConfirm(root);
  });
})();
