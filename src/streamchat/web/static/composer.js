// The message box: Enter sends, Shift+Enter is a new line, Esc or Stop stops the reply; editing the
// last message puts it back here. Sending and stopping are the conversation's: `bindComposer`.

import {state} from "./state.js";
import {articleText} from "./transcript.js";
import {$, announce} from "./ui.js";

const els = {
  composer: $("composer"), message: $("message"), send: $("send"), stop: $("stop"),
  editingNote: $("editing-note"), cancelEdit: $("cancel-edit"),
};

// What the box does: {send(kind, text) -> Promise<boolean> (kind "send" or "edit"), stop()}.
let handlers = null;

/** Give the message box what sending and stopping do (once, at start). */
export function bindComposer(actions) {
  handlers = actions;
}

export function focusMessage() {
  els.message.focus();
}

/** Send or Stop, as the reply starts and ends. */
export function setRunning(running) {
  els.send.hidden = running;
  els.stop.hidden = !running;
  els.composer.classList.toggle("running", running);
}

export function setStopping(stopping) {
  els.stop.disabled = stopping;
}

function autoGrow() {
  els.message.style.height = "auto";
  els.message.style.height = `${Math.min(els.message.scrollHeight, 240)}px`;
}

export function beginEdit(article) {
  state.editing = true;
  els.editingNote.hidden = false;
  els.message.value = articleText(article);
  autoGrow();
  els.message.focus();
}

export function endEdit() {
  state.editing = false;
  els.editingNote.hidden = true;
}

els.cancelEdit.addEventListener("click", () => {
  endEdit();
  els.message.value = "";
  autoGrow();
  els.message.focus();
});

async function submit() {
  const text = els.message.value;
  if (!text.trim()) {
    announce("The message is empty");
    return;
  }
  if (state.run) return;
  const kind = state.editing ? "edit" : "send";
  const ok = await handlers.send(kind, text);
  if (ok) {
    els.message.value = "";
    endEdit();
    autoGrow();
  }
}

els.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

els.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
els.message.addEventListener("input", autoGrow);

els.stop.addEventListener("click", () => handlers.stop());

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.run && !document.querySelector("dialog[open]")) {
    event.preventDefault();
    handlers.stop();
  }
});
