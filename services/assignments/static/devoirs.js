// Préau hand-in form: checks the chosen files before they are sent (size,
// count, type), so that a pupil on a slow Wi-Fi does not wait for an upload
// the box would refuse (RGESN 4.14/4.15). The server checks everything
// again; without this script the form works the same.
(function () {
  "use strict";
  var form = document.querySelector("form.handin");
  if (!form || !form.dataset || !window.File) {
    return;
  }
  var d = form.dataset;
  var maxFile = Number(d.maxFile), maxTotal = Number(d.maxTotal), maxFiles = Number(d.maxFiles);
  var accept = (d.accept || "").toLowerCase().split(",");
  var live = document.getElementById("verif");
  var inputs = form.querySelectorAll("input[type=file]");
  var button = form.querySelector("button[type=submit]");

  function matches(f) {
    var name = f.name.toLowerCase(), type = (f.type || "").toLowerCase();
    var dot = name.lastIndexOf(".");
    if (!type && dot < 0) {
      return true; // nothing to judge by: the server sniffs the bytes
    }
    for (var i = 0; i < accept.length; i++) {
      var a = accept[i].trim();
      if (!a) {
        continue;
      }
      if (a.charAt(0) === ".") {
        if (dot >= 0 && name.slice(dot) === a) {
          return true;
        }
      } else if (a.slice(-2) === "/*") {
        if (type.indexOf(a.slice(0, -1)) === 0) {
          return true;
        }
      } else if (type === a) {
        return true;
      }
    }
    return false;
  }

  function check() {
    var problems = [], total = 0, count = 0, last = null;
    for (var i = 0; i < inputs.length; i++) {
      var files = inputs[i].files || [], bad = "";
      for (var j = 0; j < files.length; j++) {
        var f = files[j], m = "";
        count++;
        total += f.size;
        if (f.size === 0) {
          m = d.msgEmpty;
        } else if (f.size > maxFile) {
          m = d.msgSize;
        } else if (!matches(f)) {
          m = d.msgType;
        }
        if (m) {
          m = m.split("{name}").join(f.name);
          problems.push(m);
          bad = bad || m;
        }
      }
      if (files.length) {
        last = inputs[i];
      }
      inputs[i].setCustomValidity(bad);
    }
    if (count > maxFiles) {
      problems.push(d.msgCount);
    }
    if (total > maxTotal) {
      problems.push(d.msgTotal);
    }
    if (last && problems.length && !last.validationMessage) {
      last.setCustomValidity(problems[problems.length - 1]);
    }
    live.textContent = problems.join(" ");
    return problems.length === 0;
  }

  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("change", check);
  }
  form.addEventListener("submit", function (e) {
    if (!check()) {
      e.preventDefault();
      return;
    }
    // One hand-in per press: a second press while the files go would send
    // them twice.
    window.setTimeout(function () {
      button.disabled = true;
    }, 0);
  });
  window.addEventListener("pageshow", function () {
    button.disabled = false;
  });
})();
