// The console's audience builder, counted as it is built (issue #19, docs/console.md). Each
// change (a box ticked, 400 ms after the last key in a field) asks the server to count the
// audience within consent (GET /console/campaigns/count) and shows the answer; the send form's
// audience follows the builder, so what is sent is what was counted last. Without this script
// the Count button does the same.
(function () {
  "use strict";
  var form = document.getElementById("audience");
  var reach = document.getElementById("reach");
  if (!form || !reach || !window.fetch) {
    return;
  }
  var timer = null;
  var latest = 0;

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function show(ok, message, members) {
    reach.textContent = "";
    reach.className = ok ? "" : "alert";
    if (members !== undefined) {
      var strong = document.createElement("strong");
      strong.textContent = plural(members, "member", "members");
      reach.appendChild(strong);
    }
    reach.appendChild(document.createTextNode(message));
  }

  // The send form's hidden audience fields, as the builder has them now.
  function follow(fields) {
    var box = document.getElementById("audience-fields");
    if (!box) {
      return;
    }
    box.textContent = "";
    fields.forEach(function (value, name) {
      if (name === "count") {
        return;
      }
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      box.appendChild(input);
    });
  }

  function count() {
    var sent = ++latest;
    var fields = new URLSearchParams(new FormData(form));
    follow(fields);
    fetch("/console/campaigns/count?" + fields.toString(), {
      credentials: "same-origin",
      headers: { accept: "application/json" },
      redirect: "error"
    })
      .then(function (r) {
        if (r.status !== 200 && r.status !== 422) {
          throw new Error(String(r.status));
        }
        return r.json();
      })
      .then(function (c) {
        if (sent !== latest) {
          return; // a later audience is being counted
        }
        var send = document.getElementById("send");
        if (c.error) {
          show(false, c.error);
          if (send) {
            send.hidden = true;
          }
        } else {
          if (send) {
            send.hidden = false;
          }
          show(true, " can be reached (" + plural(c.devices, "device", "devices") + "; " +
            c.without_device + " without a device). Only members who consented to offers by " +
            "push are counted.", c.members);
        }
      })
      .catch(function () {
        if (sent === latest) {
          show(false, "Not counted: the session may have ended. Open the page again.");
        }
      });
  }

  form.addEventListener("change", function () {
    clearTimeout(timer);
    count();
  });
  form.addEventListener("input", function (e) {
    if (e.target.type === "checkbox") {
      return; // counted on change
    }
    clearTimeout(timer);
    timer = setTimeout(count, 400);
  });
})();
