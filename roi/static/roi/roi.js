// Planning pages (wizard, scorecard, calculator, plan board). No inline scripts: CSP.
(function () {
  "use strict";

  // Planning pages push a URL per wizard step. Going back or forward reloads that step from
  // the server (which keeps the answers) rather than re-fetching a fragment: the page is always
  // whole and current.
  if (window.htmx) {
    window.htmx.config.refreshOnHistoryMiss = true;
  }

  // Print buttons and copying the shareable link.
  document.addEventListener("click", function (event) {
    var print = event.target.closest("[data-roi-print]");
    if (print) {
      event.preventDefault();
      window.print();
      return;
    }
    var copy = event.target.closest("[data-roi-copy]");
    if (copy) {
      event.preventDefault();
      var field = document.getElementById(copy.dataset.roiCopy);
      if (!field) return;
      var done = function () {
        copy.classList.add("btn-success");
        copy.dataset.roiCopied = "1";
        copy.querySelector(".copy-label").textContent = "Copied";
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select();
        });
      } else {
        field.select();
        done();
      }
    }
  });

  // Expand every collapsed section before printing so the report shows all inputs.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll(".roi-print-expand .collapse").forEach(function (node) {
      node.classList.add("show");
    });
  });
})();
