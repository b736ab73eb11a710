// The review queue, keyboard first. No inline scripts: the content security policy forbids them.
//
// The item fragment (#review-item) names the next case's URL (data-next-url). While the reviewer
// looks at the current case, the next fragment is fetched in the background with its evidence
// (the image as a blob, the JSON as text), so that a submit or a skip shows it at once. The
// submit itself is posted alongside; its answer (the next fragment and, out of band, the
// counts) confirms what is shown, or brings the case back with the server's message and what
// was typed when the review was refused. JSON evidence is always shown as text, never as HTML.
(function () {
  "use strict";

  var stage = document.querySelector("[data-review-stage]");
  if (!stage) return;

  var chosen = null; // the true class chosen by key on the current case
  var preloaded = null; // {url, node, ready}
  var busy = false; // a submit is on its way
  var queued = null; // a submit asked for while another one was on its way

  function item() {
    return document.getElementById("review-item");
  }

  function parse(html) {
    var template = document.createElement("template");
    template.innerHTML = html; // our own server's fragment; evidence never goes through here
    return template.content;
  }

  function headers() {
    return { "HX-Request": "true", "HX-Current-URL": window.location.href };
  }

  // --- evidence -------------------------------------------------------------------------------

  function absolute(url) {
    return new URL(url, window.location.href).toString();
  }

  function showJson(pre, text) {
    var shown;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch (error) {
      shown = text;
    }
    pre.textContent = shown;
    pre.dataset.state = "ready";
  }

  function evidenceError(status) {
    if (status === 404) return "This evidence was deleted.";
    if (status === 409) return "This evidence failed its integrity check; it is not shown.";
    return "The evidence could not be loaded (" + status + ").";
  }

  // Load what a fragment shows: JSON as text; images as blobs when the fragment is not on the
  // page yet (a preload), so that showing it needs no second request.
  function loadEvidence(root, preload) {
    var loads = [];
    root.querySelectorAll("pre[data-evidence-json]").forEach(function (pre) {
      if (pre.dataset.state) return;
      pre.dataset.state = "loading";
      loads.push(
        fetch(absolute(pre.dataset.src), { credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) throw new Error(evidenceError(response.status));
            return response.text();
          })
          .then(function (text) {
            showJson(pre, text);
          })
          .catch(function (error) {
            pre.textContent = error.message;
            pre.dataset.state = "error";
          })
      );
    });
    if (preload) {
      root.querySelectorAll("img[data-testid=evidence-image]").forEach(function (img) {
        var source = img.getAttribute("src");
        if (!source || source.indexOf("blob:") === 0) return;
        loads.push(
          fetch(absolute(source), { credentials: "same-origin" })
            .then(function (response) {
              if (!response.ok) throw new Error(evidenceError(response.status));
              return response.blob();
            })
            .then(function (blob) {
              img.setAttribute("src", URL.createObjectURL(blob));
              img.dataset.blob = "1";
            })
            .catch(function () {
              img.setAttribute("src", absolute(source)); // let the page try again when shown
            })
        );
      });
    }
    return Promise.all(loads);
  }

  function releaseBlobs(root) {
    if (!root) return;
    root.querySelectorAll("img[data-blob]").forEach(function (img) {
      URL.revokeObjectURL(img.getAttribute("src"));
    });
  }

  // --- preloading and swapping ----------------------------------------------------------------

  function preloadNext() {
    var current = item();
    preloaded = null;
    delete stage.dataset.preloaded;
    var url = current && current.dataset.nextUrl;
    if (!url) return;
    var entry = { url: url, node: null, ready: false };
    preloaded = entry;
    fetch(url, { credentials: "same-origin", headers: headers() })
      .then(function (response) {
        if (!response.ok) throw new Error("next case: " + response.status);
        return response.text();
      })
      .then(function (html) {
        var node = parse(html).querySelector("#review-item");
        if (!node) throw new Error("next case: no fragment");
        entry.node = node;
        return loadEvidence(node, true);
      })
      .then(function () {
        entry.ready = true;
        if (preloaded === entry) stage.dataset.preloaded = entry.url; // for people and tests
      })
      .catch(function () {
        if (preloaded === entry) preloaded = null; // fetched again when needed
      });
  }

  function show(node) {
    var current = item();
    if (current !== node) {
      releaseBlobs(current);
      current.replaceWith(node);
    }
    start(node);
    preloadNext();
  }

  function start(node) {
    chosen = null;
    var active = node.querySelector(".review-class.active");
    if (active) chosen = active.value;
    loadEvidence(node, false);
    stage.dataset.sample = node.dataset.sample || "";
  }

  function fetchAndShow(url) {
    return fetch(url, { credentials: "same-origin", headers: headers() })
      .then(function (response) {
        return response.text();
      })
      .then(function (html) {
        var node = parse(html).querySelector("#review-item");
        if (node) show(node);
      });
  }

  function endOfLane(current) {
    var card = document.createElement("div");
    card.id = "review-item";
    card.className = "card";
    card.dataset.testid = "review-done";
    card.dataset.nextUrl = "";
    var body = document.createElement("div");
    body.className = "card-body text-center py-5";
    var text = document.createElement("p");
    text.textContent = "No more waiting cases after this one in this lane.";
    var back = document.createElement("a");
    back.className = "btn btn-outline-primary";
    back.href = current.dataset.queueUrl || window.location.pathname;
    back.textContent = "Back to the oldest waiting case";
    body.appendChild(text);
    body.appendChild(back);
    card.appendChild(body);
    return card;
  }

  function skip() {
    var current = item();
    if (!current || busy) return;
    if (preloaded && preloaded.ready) {
      show(preloaded.node);
    } else if (current.dataset.nextUrl) {
      fetchAndShow(current.dataset.nextUrl);
    } else if (current.querySelector("[data-review-form]")) {
      show(endOfLane(current));
    }
  }

  // --- choosing and submitting ----------------------------------------------------------------

  function choose(button) {
    var current = item();
    current.querySelectorAll(".review-class").forEach(function (other) {
      other.classList.toggle("active", other === button);
      other.setAttribute("aria-pressed", other === button ? "true" : "false");
    });
    chosen = button.value;
    var note = current.querySelector("[data-review-choice]");
    if (note) {
      var verdict = chosen === current.dataset.predicted ? "confirms" : "corrects";
      note.textContent = "Chosen: " + chosen + ". Enter " + verdict + " the prediction.";
    }
  }

  function applyOutOfBand(fragment) {
    fragment.querySelectorAll("[hx-swap-oob]").forEach(function (fresh) {
      var old = fresh.id && document.getElementById(fresh.id);
      fresh.removeAttribute("hx-swap-oob");
      if (old) old.replaceWith(fresh);
      else fresh.remove();
    });
  }

  function submit(trueClass) {
    var current = item();
    var form = current && current.querySelector("form[data-review-form]");
    if (!form || !trueClass) return;
    if (busy) {
      queued = { sample: current.dataset.sample, trueClass: trueClass };
      return;
    }
    busy = true;
    var data = new FormData(form);
    data.set("true_class", trueClass);
    var next = preloaded && preloaded.ready ? preloaded.node : null;
    if (next) {
      show(next); // at once; the answer below confirms it
    } else {
      current.classList.add("review-pending");
    }
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin", headers: headers() })
      .then(function (response) {
        return response.text().then(function (html) {
          return { ok: response.ok, html: html };
        });
      })
      .then(function (answer) {
        var fragment = parse(answer.html);
        applyOutOfBand(fragment);
        var answered = fragment.querySelector("#review-item");
        if (!answer.ok) {
          // Refused: the case comes back with the reason and what was typed.
          if (answered) show(answered);
          queued = null;
          return;
        }
        if (next && answered && answered.dataset.sample === next.dataset.sample) return;
        if (answered) show(answered);
      })
      .catch(function () {
        if (next) show(current);
        current.classList.remove("review-pending");
        var note = current.querySelector("[data-review-choice]");
        if (note) note.textContent = "The review could not be sent (network); press Enter to try again.";
      })
      .then(function () {
        busy = false;
        var again = queued;
        queued = null;
        var shown = item();
        if (again && shown && shown.dataset.sample === again.sample) submit(again.trueClass);
      });
  }

  // Clicks on class buttons (and Enter in the reason field) submit through here; without this
  // script the same buttons post the form and the server redirects to the next case.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-review-form]")) return;
    event.preventDefault();
    var submitter = event.submitter;
    var value =
      submitter && submitter.name === "true_class"
        ? submitter.value
        : chosen || (form.elements.true_class && form.elements.true_class.value);
    submit(value);
  });

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-review-skip]");
    if (link && item() && item().contains(link)) {
      event.preventDefault();
      skip();
      return;
    }
    if (event.target.closest && event.target.closest("[data-review-help-toggle]")) {
      event.preventDefault();
      toggleHelp();
    }
  });

  function toggleHelp(force) {
    var help = document.getElementById("review-help");
    if (!help) return;
    help.hidden = force === undefined ? !help.hidden : !force;
  }

  function typingIn(target) {
    return target && target.closest && target.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var current = item();
    var field = typingIn(event.target);
    if (field) {
      if (event.key === "Escape") {
        event.preventDefault();
        field.blur();
      } else if (event.key === "Enter" && field.matches("[data-review-reason]") && !event.shiftKey) {
        event.preventDefault();
        submit(chosen);
      }
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (event.key === "Escape") {
      toggleHelp(false);
      return;
    }
    var form = current && current.querySelector("form[data-review-form]");
    if (event.key === "s") {
      event.preventDefault();
      skip();
      return;
    }
    if (!form) return;
    if (event.key === "r") {
      var reason = form.querySelector("[data-review-reason]");
      if (reason) {
        event.preventDefault();
        reason.focus();
      }
      return;
    }
    if (event.key === "Enter") {
      if (chosen) {
        event.preventDefault();
        submit(chosen);
      }
      return;
    }
    if (event.key.length !== 1) return;
    var button = form.querySelector('[data-class-key="' + CSS.escape(event.key.toLowerCase()) + '"]');
    if (!button) return;
    event.preventDefault();
    if (chosen === button.value) submit(chosen);
    else choose(button);
  });

  var first = item();
  if (first && first.dataset.sample) {
    start(first);
    preloadNext();
  }
})();
