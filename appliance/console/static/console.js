// Préau console dashboard: keeps the server-rendered blocks up to date.
// It listens on the console's WebSocket (/console/ws), reconnects by itself
// with a growing delay, and when the socket keeps failing it fetches
// /api/v1/status?view=1 every few seconds instead (trying the socket again
// now and then). Without this script the page still shows the state it was
// rendered with.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root || !window.JSON || !window.WebSocket) {
    return;
  }
  var d = root.dataset;
  var status = document.getElementById("live-status");
  var fallbackMs = (Number(d.fallback) || 10) * 1000;
  var maxFailures = 4;
  var failures = 0, delay = 1000, retryTimer = null, pollTimer = null, polling = false;

  function each(list, f) {
    Array.prototype.forEach.call(list, f);
  }

  function setStatus(text) {
    if (status && status.textContent !== text) {
      status.textContent = text;
    }
  }

  function apply(v) {
    var text = v.text || {}, lists = v.lists || {}, state = v.state || {};
    each(root.querySelectorAll("[data-k]"), function (el) {
      var k = el.getAttribute("data-k");
      if (!Object.prototype.hasOwnProperty.call(text, k)) {
        return;
      }
      if (el.textContent !== text[k]) {
        el.textContent = text[k];
      }
      if (el.hasAttribute("data-hide-empty")) {
        el.hidden = !text[k];
      }
    });
    each(root.querySelectorAll("[data-l]"), function (ul) {
      var items = lists[ul.getAttribute("data-l")] || [];
      var empty = items.length === 0;
      var want = empty ? [ul.getAttribute("data-none") || ""] : items;
      var have = [];
      each(ul.children, function (li) {
        have.push(li.textContent);
      });
      if (have.join("\n") === want.join("\n")) {
        return;
      }
      while (ul.firstChild) {
        ul.removeChild(ul.firstChild);
      }
      want.forEach(function (t) {
        var li = document.createElement("li");
        li.textContent = t;
        if (empty) {
          li.className = "m";
        }
        ul.appendChild(li);
      });
    });
    each(root.querySelectorAll("[data-s]"), function (el) {
      var s = state[el.getAttribute("data-s")] || "";
      if (el.getAttribute("data-state") !== s) {
        el.setAttribute("data-state", s);
      }
    });
  }

  function handle(data) {
    var m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (m && m.view) {
      apply(m.view);
    }
  }

  function schedule(ms) {
    if (retryTimer === null) {
      retryTimer = window.setTimeout(connect, ms + Math.floor(Math.random() * 500));
    }
  }

  function poll() {
    pollTimer = null;
    fetch("/api/v1/status?view=1", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) {
          window.location.reload(); // the session ended: back to sign-in
          throw new Error("signed out");
        }
        return r.json();
      })
      .then(function (m) {
        if (m && m.view) {
          apply(m.view);
        }
      })
      .catch(function () {})
      .then(function () {
        if (polling && pollTimer === null) {
          pollTimer = window.setTimeout(poll, fallbackMs);
        }
      });
  }

  function startPolling() {
    if (!polling) {
      polling = true;
      setStatus(d.livePoll || "");
      poll();
    }
  }

  function stopPolling() {
    polling = false;
    if (pollTimer !== null) {
      window.clearTimeout(pollTimer);
      pollTimer = null;
    }
  }

  function failed() {
    if (failures >= maxFailures) {
      startPolling();
      schedule(60000);
      return;
    }
    setStatus(d.liveRetry || "");
    schedule(delay);
    delay = Math.min(delay * 2, 30000);
  }

  function connect() {
    retryTimer = null;
    var url = (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + "/console/ws";
    var ws, got = false;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      failures++;
      failed();
      return;
    }
    ws.onmessage = function (ev) {
      if (!got) {
        got = true;
        failures = 0;
        delay = 1000;
        stopPolling();
        setStatus(d.liveOn || "");
      }
      handle(ev.data);
    };
    ws.onclose = function (ev) {
      if (ev.code === 1008) {
        window.location.reload(); // the session ended
        return;
      }
      if (!got) {
        failures++;
      }
      failed();
    };
  }

  window.addEventListener("pagehide", function () {
    stopPolling();
  });
  connect();
})();
