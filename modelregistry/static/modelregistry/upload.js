// Model upload: a drop zone around the file input, and a progress bar fed by htmx's XHR.
(function () {
  "use strict";

  function wire(root) {
    root.querySelectorAll("[data-dropzone]").forEach(function (zone) {
      if (zone.dataset.wired) return;
      zone.dataset.wired = "1";
      var input = zone.querySelector("input[type=file]");
      var label = zone.querySelector("[data-file-name]");
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.add("is-dragover"); });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.remove("is-dragover"); });
      });
      input.addEventListener("change", function () {
        if (input.files.length && label) {
          var file = input.files[0];
          label.textContent = file.name + " · " + (file.size / 1048576).toFixed(1) + " MB";
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSettle", function (event) { wire(event.target); });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest ? event.target.closest("form[data-upload-progress]") : null;
    if (!form || !event.detail.lengthComputable) return;
    var box = form.querySelector("[data-progress]");
    var bar = box && box.querySelector(".progress-bar");
    var text = form.querySelector("[data-progress-text]");
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    if (box) box.classList.remove("d-none");
    if (bar) bar.style.width = percent + "%";
    if (text) {
      text.classList.remove("d-none");
      text.textContent = percent < 100 ? "Uploading… " + percent + " %" : "Checking the model…";
    }
  });
})();
