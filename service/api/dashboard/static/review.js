// The review queue: pick many photos and accept them in one go, undo in place, void
// only after a confirmation with a reason, and the keyboard (J/K next/previous, X pick,
// A accept, C correct, U undo). Accepting posts to /dashboard/studies/{study}/review/
// accept (the same domain rule and audit entry as PATCH /v1/assessments/{id}); without
// this script the same forms work as plain posts.
"use strict";

function reviewQueue() {
  const batch = document.getElementById("batch-form");
  const cards = Array.from(document.querySelectorAll("article.review-item"));
  const status = document.querySelector(".queue-status");
  const toast = document.getElementById("undo-toast");
  const dialog = document.getElementById("confirm-void");
  const undoStack = [];
  let current = 0;

  const say = (text) => {
    if (status) status.textContent = text;
  };
  const picks = () => cards.filter((c) => !c.classList.contains("done")).map((c) => c.querySelector("input[name=assessment]")).filter(Boolean);
  const picked = () => picks().filter((p) => p.checked);
  function updateCount() {
    const n = picked().length;
    const count = document.getElementById("picked-count");
    if (count) count.textContent = String(n);
    const all = document.getElementById("pick-all");
    if (all) all.checked = n > 0 && n === picks().length;
  }

  // Narrow screens: the wound's series folded away under the photo.
  if (window.matchMedia("(max-width: 700px)").matches) {
    document.querySelectorAll("details.series-fold").forEach((d) => d.removeAttribute("open"));
  }

  function focusCard(i) {
    if (!cards.length) return;
    current = Math.min(Math.max(i, 0), cards.length - 1);
    cards.forEach((c, k) => c.classList.toggle("current", k === current));
    const card = cards[current];
    card.setAttribute("tabindex", "-1");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function markDone(ids, accepted) {
    ids.forEach((id) => {
      const card = cards.find((c) => c.dataset.assessment === id);
      if (!card) return;
      const pick = card.querySelector("input[name=assessment]");
      if (pick) pick.checked = false;
      let note = card.querySelector(".done-note");
      if (accepted) {
        card.classList.add("done");
        if (!note) {
          note = document.createElement("p");
          note.className = "done-note";
          note.setAttribute("role", "status");
          const undo = document.createElement("button");
          undo.type = "button";
          undo.className = "undo-one";
          undo.textContent = "Undo";
          undo.addEventListener("click", () => send([id], false));
          note.append(document.createTextNode("Accepted. "), undo);
          card.querySelector(".review-body").prepend(note);
        }
      } else {
        card.classList.remove("done");
        if (note) note.remove();
      }
    });
    updateCount();
  }

  function showToast(ids) {
    if (!toast) return;
    toast.querySelector(".undo-text").textContent = `Accepted ${ids.length} photo${ids.length === 1 ? "" : "s"}.`;
    toast.hidden = false;
  }

  async function send(ids, accepted) {
    if (!ids.length) {
      say("select photos first (X, or the boxes)");
      return false;
    }
    const body = new URLSearchParams();
    body.append("csrf", batch.querySelector("input[name=csrf]").value);
    body.append("accepted", accepted ? "yes" : "no");
    ids.forEach((id) => body.append("assessment", id));
    say(accepted ? "accepting…" : "undoing…");
    let answer = null;
    try {
      answer = await fetch(batch.action, { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" }, body });
    } catch (error) {
      answer = null;
    }
    if (!answer || !answer.ok) {
      let detail = "not saved: reload the page and try again";
      try {
        detail = (await answer.json()).detail || detail;
      } catch (error) { /* keep the plain message */ }
      say(detail);
      return false;
    }
    markDone(ids, accepted);
    if (accepted && cards[current] && cards[current].classList.contains("done")) {
      const next = cards.findIndex((c) => !c.classList.contains("done"));
      if (next >= 0) focusCard(next);
    }
    if (accepted) {
      undoStack.push(ids);
      showToast(ids);
      say(`accepted ${ids.length}: Undo (U) takes it back`);
    } else {
      const at = undoStack.findIndex((b) => b.length === ids.length && b.every((id, k) => id === ids[k]));
      if (at >= 0) undoStack.splice(at, 1);
      else undoStack.forEach((b, k) => { undoStack[k] = b.filter((id) => !ids.includes(id)); });
      if (toast && !undoStack.some((b) => b.length)) toast.hidden = true;
      say(`back in the queue: ${ids.length}`);
    }
    batch.dataset.done = String(Number(batch.dataset.done || 0) + 1);
    return true;
  }

  function undoLast() {
    while (undoStack.length && !undoStack[undoStack.length - 1].length) undoStack.pop();
    const last = undoStack[undoStack.length - 1];
    if (!last) {
      say("nothing to undo");
      return;
    }
    send(last.slice(), false);
  }

  if (batch) {
    batch.addEventListener("submit", (event) => {
      event.preventDefault();
      send(picked().map((p) => p.value), true);
    });
    const all = document.getElementById("pick-all");
    if (all) all.addEventListener("change", () => { picks().forEach((p) => { p.checked = all.checked; }); updateCount(); });
    picks().forEach((p) => p.addEventListener("change", updateCount));
    const undo = document.getElementById("undo-last");
    if (undo) undo.addEventListener("click", undoLast);
    // A card's own Accept: in place, undoable.
    cards.forEach((card) => {
      const form = card.querySelector(".actions form[action$='/accept']");
      if (!form) return;
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        send([card.dataset.assessment], true);
      });
    });
    updateCount();
  }

  // Void: a confirmation with the reason, never one click.
  document.querySelectorAll("article.review-item form.void").forEach((form) => {
    if (dialog) form.noValidate = true; // the dialog asks for the reason
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed === "true" || !dialog) return;
      event.preventDefault();
      const typed = form.querySelector("input[name=reason]");
      const reason = document.getElementById("confirm-void-reason");
      const error = document.getElementById("confirm-void-error");
      reason.value = typed ? typed.value : "";
      error.hidden = true;
      dialog.returnValue = "";
      dialog.showModal();
      reason.focus();
      const go = document.getElementById("confirm-void-go");
      const onGo = (e) => {
        if (!reason.value.trim()) {
          e.preventDefault();
          error.hidden = false;
          reason.focus();
        }
      };
      go.addEventListener("click", onGo);
      dialog.addEventListener("close", () => {
        go.removeEventListener("click", onGo);
        if (dialog.returnValue !== "void" || !reason.value.trim()) {
          say("not voided");
          return;
        }
        if (typed) typed.value = reason.value.trim();
        form.dataset.confirmed = "true";
        form.requestSubmit();
      }, { once: true });
    });
  });

  document.addEventListener("keydown", (event) => {
    const t = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = t && (["TEXTAREA", "SELECT"].includes(t.tagName) || t.isContentEditable
      || (t.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(t.type)));
    if (typing) return;
    if (dialog && dialog.open) return;
    const card = cards[current];
    const key = event.key.toLowerCase();
    if (key === "j") focusCard(current + 1);
    else if (key === "k") focusCard(current - 1);
    else if (key === "x" && card) {
      const pick = card.querySelector("input[name=assessment]");
      if (pick && !card.classList.contains("done")) { pick.checked = !pick.checked; updateCount(); }
    } else if (key === "a" && batch) {
      const ids = picked().map((p) => p.value);
      if (ids.length) send(ids, true);
      else if (card && !card.classList.contains("done")) send([card.dataset.assessment], true);
    } else if (key === "c" && card) {
      const link = card.querySelector("a.correct-link");
      if (link) window.location.assign(link.href);
    } else if (key === "u") undoLast();
    else return;
    event.preventDefault();
  });
  if (cards.length) cards[0].classList.add("current");
}

document.addEventListener("DOMContentLoaded", reviewQueue);
