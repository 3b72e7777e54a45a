// The KPI page, live (issue #19, docs/console.md): every 15 s the page asks the server for
// itself again (same period, same shop) and puts the new figures in place, without reloading:
// focus, the period's form and what a screen reader was reading stay where they were (a timed
// reload of the whole page is a WCAG 2.2.1 failure). "Pause live updates" stops it (WCAG
// 2.2.2); a hidden tab is not updated until shown again. Without this script the page says
// when its figures were read and links to itself.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var stamp = document.getElementById("as-of");
  var pause = document.getElementById("pause");
  if (!live || !stamp || !pause || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = 1000 * (parseInt(live.getAttribute("data-every"), 10) || 15);
  var timer = null;
  var busy = false;

  function stopped(message) {
    clearTimeout(timer);
    timer = null;
    pause.hidden = true;
    var alert = document.getElementById("live-stopped");
    alert.textContent = message;
    alert.hidden = false;
  }

  function schedule() {
    clearTimeout(timer);
    timer = pause.getAttribute("aria-pressed") === "true" ? null : setTimeout(update, every);
  }

  function update() {
    if (document.hidden || busy) {
      schedule();
      return;
    }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { accept: "text/html" },
      redirect: "error", // an ended session answers with the sign-in page
      cache: "no-store"
    })
      .then(function (r) {
        if (r.status !== 200) {
          throw new Error(String(r.status));
        }
        return r.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) {
            old.replaceChildren.apply(old, Array.prototype.slice.call(next.childNodes));
          }
        });
        var freshStamp = fresh.getElementById("as-of");
        if (freshStamp) {
          stamp.textContent = freshStamp.textContent;
          stamp.setAttribute("datetime", freshStamp.getAttribute("datetime"));
        }
        busy = false;
        schedule();
      })
      .catch(function () {
        busy = false;
        stopped("Live updates stopped: the session may have ended. Open the page again.");
      });
  }

  pause.hidden = false;
  pause.addEventListener("click", function () {
    var paused = pause.getAttribute("aria-pressed") === "true";
    pause.setAttribute("aria-pressed", paused ? "false" : "true");
    if (paused) {
      update();
    } else {
      schedule();
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer !== null) {
      clearTimeout(timer);
      update();
    }
  });
  schedule();
})();
