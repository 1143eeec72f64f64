// Small pieces every part of the page uses: element lookup, the toast, screen-reader announcements,
// buttons, the two dialogs, copying, and formatting costs and times.

export const $ = (id) => document.getElementById(id);

const els = {
  toast: $("toast"), announcer: $("announcer"), confirmDialog: $("confirm-dialog"), confirmText: $("confirm-text"),
  confirmOk: $("confirm-ok"), textDialog: $("text-dialog"), textLabel: $("text-label"), textInput: $("text-input"),
  textArea: $("text-area"),
};

let toastTimer = 0;
export function toast(message) {
  els.toast.textContent = message;
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { els.toast.hidden = true; }, 6000);
}

export function announce(message) {
  els.announcer.textContent = "";
  // A fresh text node after a tick, so the same message twice is still read.
  setTimeout(() => { els.announcer.textContent = message; }, 30);
}

export function formatCost(cost) {
  if (cost == null) return "n/a";
  if (cost === 0) return "$0.00";
  if (cost < 0.01) return `$${cost.toFixed(4)}`;
  return `$${cost.toFixed(2)}`;
}

export function button(label, {name = label, className = "action", pressed, onClick} = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  if (name !== label) b.setAttribute("aria-label", name);
  if (pressed !== undefined) b.setAttribute("aria-pressed", String(pressed));
  if (onClick) b.addEventListener("click", onClick);
  return b;
}

export function relativeTime(stamp) {
  const then = new Date(stamp);
  if (Number.isNaN(then.getTime())) return "";
  const seconds = (Date.now() - then.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return then.toLocaleDateString();
}

export async function copyText(text, message) {
  try {
    await navigator.clipboard.writeText(text);
    announce(message);
  } catch {
    toast("Copying needs clipboard access (a secure context): select the text instead.");
  }
}

// -- dialogs ------------------------------------------------------------------------------------

export function confirmAction(message, okLabel = "Delete") {
  return new Promise((resolve) => {
    els.confirmText.textContent = message;
    els.confirmOk.textContent = okLabel;
    els.confirmDialog.returnValue = "";
    els.confirmDialog.addEventListener("close", () => resolve(els.confirmDialog.returnValue === "ok"), {once: true});
    els.confirmDialog.showModal();
  });
}

export function askText(label, value, {multiline = false} = {}) {
  return new Promise((resolve) => {
    els.textLabel.textContent = label;
    const field = multiline ? els.textArea : els.textInput;
    els.textInput.hidden = multiline;
    els.textArea.hidden = !multiline;
    els.textLabel.htmlFor = field.id;
    field.value = value;
    els.textDialog.returnValue = "";
    els.textDialog.addEventListener("close", () => {
      resolve(els.textDialog.returnValue === "ok" ? field.value : null);
    }, {once: true});
    els.textDialog.showModal();
    field.focus();
    field.select();
  });
}
