// Projects pages: board drags, Gantt drags, forms and buttons, all through the JSON API.
(function () {
  "use strict";

  function csrf() {
    var raw = document.body.getAttribute("hx-headers");
    if (raw) {
      try { return JSON.parse(raw)["X-CSRF-Token"] || ""; } catch (e) { /* fall through */ }
    }
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function say(text, isError) {
    var box = document.getElementById("prj-message");
    if (!box) { return; }
    box.textContent = text;
    box.className = isError ? "error" : "";
  }

  function call(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRF-Token": csrf() },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = text ? JSON.parse(text) : {};
        if (!response.ok) {
          var error = new Error(data.detail || response.statusText);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function iso(d) {
    var m = String(d.getMonth() + 1).padStart(2, "0");
    return d.getFullYear() + "-" + m + "-" + String(d.getDate()).padStart(2, "0");
  }

  // --- kanban -------------------------------------------------------------------------
  function board(root) {
    var api = root.dataset.api;
    var saving = Promise.resolve();
    root.querySelectorAll(".prj-cards").forEach(function (list) {
      window.Sortable.create(list, {
        group: "prj-board",
        forceFallback: true,  // pointer events: the same on touch screens and in tests
        animation: 120,
        onMove: function (evt) {
          var wip = parseInt(evt.to.dataset.wip || "0", 10);
          var inColumn = root.querySelectorAll(
            '.prj-cards[data-status="' + evt.to.dataset.status + '"] .prj-card').length;
          var leaving = evt.from.dataset.status !== evt.to.dataset.status;
          return !(wip && leaving && inColumn >= wip);
        },
        onEnd: function (evt) {
          var card = evt.item;
          var prev = card.previousElementSibling;
          var next = card.nextElementSibling;
          var body = {
            version: parseInt(card.dataset.version, 10),
            status: evt.to.dataset.status,
            lane: evt.to.dataset.lane,
            after_id: prev ? prev.dataset.id : null,
            before_id: next ? next.dataset.id : null
          };
          saving = saving.then(function () {
            return call("POST", api + "/tasks/" + card.dataset.id + "/move", body)
              .then(function (task) {
                card.dataset.version = task.version;
                card.dataset.saved = "1";
                say("");
              })
              .catch(function (error) {
                say(error.message + " — reloading", true);
                setTimeout(function () { window.location.reload(); }, 1200);
              });
          });
        }
      });
    });
  }

  // --- Gantt --------------------------------------------------------------------------
  function gantt(root) {
    var api = root.dataset.api;
    var url = window.location.pathname.replace(/\/gantt$/, "/gantt.json");
    var versions = {};
    var shifted = [];
    function showViolations(list, tasks) {
      var names = {};
      tasks.forEach(function (t) { names[t.id] = t.name; });
      var box = document.getElementById("prj-violations");
      box.innerHTML = "";
      root.querySelectorAll(".bar-wrapper.violation").forEach(function (el) {
        el.classList.remove("violation");
      });
      list.forEach(function (v) {
        var li = document.createElement("li");
        li.textContent = (names[v.successor_id] || v.successor_id) + " starts before " +
          (names[v.predecessor_id] || v.predecessor_id) + " allows";
        box.appendChild(li);
        var bar = root.querySelector('.bar-wrapper[data-id="' + v.successor_id + '"]');
        if (bar) { bar.classList.add("violation"); }
      });
    }
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        data.tasks.forEach(function (t) { versions[t.id] = t.version; });
        if (!data.tasks.length) { say("No tasks yet."); return; }
        var chart = new window.Gantt("#prj-gantt", data.tasks, {
          view_mode: "Day",
          readonly_progress: true,
          on_date_change: function (task, start, end) {
            call("POST", api + "/tasks/" + task.id + "/dates", {
              version: versions[task.id], start_date: iso(start), due_date: iso(end)
            }).then(function (answer) {
              versions[task.id] = answer.task.version;
              root.dataset.saved = task.id;
              shifted = answer.shifted || [];
              return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); });
            }).then(function (fresh) {
              fresh.tasks.forEach(function (t) { versions[t.id] = t.version; });
              if (shifted.length) { root.gantt.refresh(fresh.tasks); }
              showViolations(fresh.violations, fresh.tasks);
              say(shifted.length ? "Saved; " + shifted.length + " successors moved along" : "Saved");
            }).catch(function (error) {
              say(error.message, true);
              setTimeout(function () { window.location.reload(); }, 1500);
            });
          }
        });
        root.gantt = chart;
        showViolations(data.violations, data.tasks);
      });
  }

  // --- one task -----------------------------------------------------------------------
  function taskPage(root) {
    var api = root.dataset.api;
    var url = api + "/tasks/" + root.dataset.task;
    function on(id, handler) {
      var form = document.getElementById(id);
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        handler(form).then(function () { reloadOr(); }).catch(reloadOr);
      });
    }
    function checklist(extra) {
      var items = Array.prototype.map.call(root.querySelectorAll(".prj-check"), function (box) {
        return { text: box.dataset.text, done: box.checked };
      });
      if (extra) { items.push({ text: extra, done: false }); }
      return call("PATCH", url, { version: parseInt(root.dataset.version, 10), checklist: items });
    }
    on("prj-task-edit", function (form) {
      var data = fields(form);
      data.version = parseInt(root.dataset.version, 10);
      data.shared = form.querySelector('[name="shared"]').checked;
      return call("PATCH", url, data);
    });
    on("prj-check-add", function (form) { return checklist(fields(form).text); });
    root.querySelectorAll(".prj-check").forEach(function (box) {
      box.addEventListener("change", function () {
        checklist(null).then(function (task) { root.dataset.version = task.version; })
          .catch(reloadOr);
      });
    });
    on("prj-subtask", function (form) {
      var data = fields(form);
      data.parent_id = root.dataset.task;
      return call("POST", api + "/projects/" + root.dataset.project + "/tasks", data);
    });
    on("prj-dep", function (form) {
      var data = fields(form);
      return call("POST", api + "/dependencies", {
        predecessor_id: data.predecessor_id, successor_id: root.dataset.task,
        lag_days: parseInt(data.lag_days || "0", 10)
      });
    });
    on("prj-comment", function (form) {
      return call("POST", url + "/comments", {
        body: fields(form).body, shared: form.querySelector('[name="shared"]').checked
      });
    });
  }

  // --- forms and buttons ----------------------------------------------------------------
  function fields(form) {
    var out = {};
    new FormData(form).forEach(function (value, key) { if (value !== "") { out[key] = value; } });
    return out;
  }

  function picked() {
    return Array.prototype.map.call(document.querySelectorAll(".prj-pick:checked"),
      function (box) { return box.value; });
  }

  function reloadOr(error) { if (error) { say(error.message, true); } else { window.location.reload(); } }

  function wire() {
    var board_ = document.getElementById("prj-board");
    if (board_ && window.Sortable) { board(board_); }
    var chart = document.getElementById("prj-gantt");
    if (chart && window.Gantt) { gantt(chart); }

    var newProject = document.getElementById("prj-new-project");
    if (newProject) {
      newProject.addEventListener("submit", function (e) {
        e.preventDefault();
        call("POST", newProject.dataset.api + "/projects", fields(newProject))
          .then(function (p) { window.location.href = newProject.dataset.base + "/" + p.id; })
          .catch(reloadOr);
      });
    }
    var newTask = document.getElementById("prj-new-task");
    if (newTask) {
      newTask.addEventListener("submit", function (e) {
        e.preventDefault();
        var data = fields(newTask);
        if (data.assignee) { data.assignees = [data.assignee]; }
        delete data.assignee;
        call("POST", newTask.dataset.api + "/projects/" + newTask.dataset.project + "/tasks",
          data).then(function () { reloadOr(); }).catch(reloadOr);
      });
    }
    var bulk = document.getElementById("prj-bulk");
    if (bulk) {
      bulk.addEventListener("submit", function (e) {
        e.preventDefault();
        var set = fields(bulk);
        if (set.priority !== undefined) { set.priority = parseInt(set.priority, 10); }
        if (set.shared !== undefined) { set.shared = set.shared === "true"; }
        call("POST", bulk.dataset.api + "/projects/" + bulk.dataset.project + "/tasks/bulk",
          { ids: picked(), set: set }).then(function () { reloadOr(); }).catch(reloadOr);
      });
    }
    var time = document.getElementById("prj-time");
    if (time) {
      var api = time.dataset.api;
      var project = time.dataset.project;
      time.addEventListener("click", function (e) {
        var action = e.target.dataset && e.target.dataset.action;
        if (!action) { return; }
        e.preventDefault();
        var done;
        if (action === "start") {
          var task = time.querySelector('#prj-timer select[name="task_id"]').value;
          done = call("POST", api + "/timer/start", { project_id: project, task_id: task || null });
        } else if (action === "stop") {
          done = call("POST", api + "/timer/stop");
        } else {
          var status = { approve: "approved", reject: "rejected", submit: "submitted" }[action];
          done = call("POST", api + "/projects/" + project + "/time/status",
            { ids: picked(), status: status });
        }
        done.then(function () { reloadOr(); }).catch(reloadOr);
      });
      var entry = document.getElementById("prj-entry");
      entry.addEventListener("submit", function (e) {
        e.preventDefault();
        var data = fields(entry);
        data.minutes = parseInt(data.minutes, 10);
        data.billable = entry.querySelector('[name="billable"]').checked;
        if (!data.task_id) { delete data.task_id; }
        call("POST", api + "/projects/" + project + "/time", data)
          .then(function () { reloadOr(); }).catch(reloadOr);
      });
    }
    var share = document.getElementById("prj-portal");
    if (share) {
      var box = document.getElementById("prj-billing");
      share.addEventListener("submit", function (e) {
        e.preventDefault();
        call("POST", box.dataset.api + "/projects/" + box.dataset.project + "/portal", fields(share))
          .then(function (access) {
            document.getElementById("prj-portal-link").value = access.url;
            say("Send this link to the contact");
          }).catch(reloadOr);
      });
    }
    var settings = document.getElementById("prj-settings");
    if (settings) {
      settings.addEventListener("submit", function (e) {
        e.preventDefault();
        var data = fields(settings);
        var limits = {};
        ["todo", "doing", "review", "done"].forEach(function (k) {
          if (data["wip_" + k]) { limits[k] = parseInt(data["wip_" + k], 10); }
          delete data["wip_" + k];
        });
        data.wip_limits = limits;
        data.enforce_dependencies = settings.querySelector('[name="enforce_dependencies"]').checked;
        data.auto_shift = settings.querySelector('[name="auto_shift"]').checked;
        call("PATCH", settings.dataset.api + "/projects/" + settings.dataset.project, data)
          .then(function () { say("Saved"); }).catch(function (error) { say(error.message, true); });
      });
      var rate = document.getElementById("prj-rate");
      if (rate) {
        rate.addEventListener("submit", function (e) {
          e.preventDefault();
          var data = fields(rate);
          call("PUT", settings.dataset.api + "/projects/" + settings.dataset.project + "/rates/" +
            data.user_id, { hourly_rate: data.hourly_rate })
            .then(function () { say("Rate saved"); }).catch(function (error) { say(error.message, true); });
        });
      }
    }
    var detail = document.getElementById("prj-task");
    if (detail) { taskPage(detail); }
    var bill = document.getElementById("prj-billing");
    if (bill) {
      bill.addEventListener("click", function (e) {
        if (!(e.target.dataset && e.target.dataset.action === "bill")) { return; }
        e.preventDefault();
        call("POST", bill.dataset.api + "/projects/" + bill.dataset.project + "/bill")
          .then(function (r) {
            say(r.invoice ? "Draft invoice created (" + r.lines + " lines)" :
              "Prepaid hours used: " + r.consumed + " entries");
          }).catch(reloadOr);
      });
    }
  }

  // Deferred vendor scripts run after this one and before DOMContentLoaded.
  if (document.readyState === "complete") {
    wire();
  } else {
    document.addEventListener("DOMContentLoaded", wire);
  }
}());
