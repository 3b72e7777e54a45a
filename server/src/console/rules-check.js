// The console's rules editor, checked as it is typed (issue #19, docs/console.md). The text is
// sent to the server's own checks (POST /console/rules/check, with the session's CSRF token)
// 400 ms after the last key; nothing is checked here. Without this script the Check button
// runs the same checks.
(function () {
  "use strict";
  var form = document.getElementById("rules-form");
  var text = document.getElementById("rules-text");
  var live = document.getElementById("rules-live");
  if (!form || !text || !live || !window.fetch) {
    return;
  }
  var timer = null;
  var latest = 0;

  function show(ok, message) {
    live.textContent = message;
    live.className = ok ? "ok" : "alert";
    text.setAttribute("aria-invalid", ok ? "false" : "true");
  }

  function check() {
    var sent = ++latest;
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    body.set("rules", text.value);
    fetch("/console/rules/check", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { accept: "application/json" },
      redirect: "error"
    })
      .then(function (r) {
        if (!r.ok) {
          throw new Error(String(r.status));
        }
        return r.json();
      })
      .then(function (c) {
        if (sent !== latest) {
          return; // a later text is being checked
        }
        if (c.valid) {
          show(true, "The rule set passes every check.");
        } else if (c.line) {
          show(false, "Line " + c.line + ", column " + c.column + ": " + c.reason);
        } else {
          show(false, c.reason);
        }
      })
      .catch(function () {
        if (sent === latest) {
          show(false, "Not checked: the session may have ended. Open the page again.");
        }
      });
  }

  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });
})();
