// The preview page: poll /state, fill the page with textContent only, reload the
// frames when the version changes. Nothing here reads or runs the email's markup.
"use strict";

const $ = (id) => document.getElementById(id);
let shownVersion = -1;
let shownGood = null;

function fillTable(table, rows) {
  table.replaceChildren(
    ...rows.map(([key, value]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = key;
      td.textContent = value;
      tr.append(th, td);
      return tr;
    })
  );
}

function show(state) {
  $("issue-path").textContent = state.issue;
  const error = $("error");
  error.hidden = !state.error;
  $("error-text").textContent = state.error || "";
  if (!state.ready) {
    $("status").textContent = "no good render yet";
    return;
  }
  $("inbox-from").textContent = state.inbox.from_name;
  $("inbox-subject").textContent = state.inbox.subject;
  $("inbox-preheader").textContent = state.inbox.preheader;
  $("text").textContent = state.text;
  fillTable($("headers"), state.headers);
  fillTable($("links"), state.links.map((l) => [l.text || "(no text)", l.href]));
  $("links-count").textContent = `(${state.links.length})`;
  const checks = $("checks");
  checks.replaceChildren(
    ...state.findings.map((f) => {
      const li = document.createElement("li");
      li.className = f.level;
      li.textContent = `${f.level}: ${f.message}`;
      return li;
    })
  );
  if (state.findings.length === 0) {
    const li = document.createElement("li");
    li.className = "ok";
    li.textContent = "No problems found.";
    checks.append(li);
  }
  $("field-notes").replaceChildren(
    ...state.field_notes.map((note) => {
      const li = document.createElement("li");
      li.className = "note";
      li.textContent = `note: ${note}`;
      return li;
    })
  );
  $("bare").hidden = !state.without_fields;
  const errors = state.findings.filter((f) => f.level === "error").length;
  $("checks-count").textContent = `(${errors} errors, ${state.findings.length - errors} warnings)`;
  if (state.good_version !== shownGood) {
    shownGood = state.good_version;
    for (const id of ["frame-desktop", "frame-phone"]) {
      $(id).src = `/html?v=${state.good_version}`;
    }
    if (state.without_fields) {
      $("frame-bare").src = `/html?reader=bare&v=${state.good_version}`;
    }
  }
  $("status").textContent = state.error ? "showing the last good render" : `rendered (v${state.version})`;
}

async function poll() {
  try {
    const response = await fetch("/state", { cache: "no-store" });
    const state = await response.json();
    if (state.version !== shownVersion) {
      shownVersion = state.version;
      show(state);
    }
  } catch (err) {
    $("status").textContent = "preview server not reachable";
  }
  setTimeout(poll, 400);
}

poll();
