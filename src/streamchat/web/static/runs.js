// Following a reply that runs on the server: its events drawn into its article as they come
// (stream.js), tool calls to allow or deny, Stop, and what its end or a gone event log means.

import {api} from "./api.js";
import {setRunning, setStopping} from "./composer.js";
import {state} from "./state.js";
import {ReplyView, followRun} from "./stream.js";
import {appendArticle, articles, follow, makeArticle, refreshActions, setStatus, setUsage, showWelcome} from "./transcript.js";
import {announce, button, toast} from "./ui.js";
import {renderStatus} from "./usage.js";

const goneRuns = new Set();

/** True when the run's event log was trimmed before this page could read it. */
export function isGone(runId) {
  return goneRuns.has(runId);
}

/**
 * Follow run `runId`, whose reply is message `position`, from event `after` on; `onEnd()` after it
 * ended, `onGone()` when its events can no longer be had (the store has the reply).
 */
export function attachRun(runId, position, {after = 0, kind = "send", onEnd, onGone}) {
  let target = articles().find((a) => a.dataset.role === "assistant" && a.dataset.index === String(position)) ?? null;
  if (!target) {
    target = makeArticle({role: "assistant", index: position, status: "streaming"});
    appendArticle(target);
  }
  target.dataset.status = "streaming";
  target.querySelector(".notice").hidden = true;
  target.querySelector(".content").replaceChildren();
  const view = new ReplyView(target.querySelector(".content"));
  const run = {id: runId, article: target, view, handle: null, chars: 0, usage: null};
  state.run = run;
  setRunning(true);
  showWelcome();
  refreshActions();
  renderStatus();
  announce(kind === "continue" ? "Reply continuing" : "Reply started");
  run.handle = followRun(`/api/runs/${encodeURIComponent(runId)}/events`, view, {
    after,
    onEvent: (type, data) => onRunEvent(run, type, data),
    onFrame: () => onRunFrame(run),
    onEnd: (data) => onRunEnd(run, data, onEnd),
    onGone: () => onRunGone(run, onGone),
  });
  follow();
}

function onRunEvent(run, type, data) {
  if (state.run !== run) return;
  if (data.chars !== undefined) run.chars = data.chars;
  if (type === "usage") run.usage = data;
  if (type === "tool_ask") showToolQuestion(run, data);
  if (type === "tool_answer") run.article.querySelector(`.tool-ask[data-tool-id="${CSS.escape(data.id)}"]`)?.remove();
  if (type === "window" && data.dropped) announce(`${data.dropped} older messages left out of the context window`);
  if (type === "part" && data.kind === "thinking") run.article.querySelector(".thinking.live summary")?.replaceChildren("Thinking…");
  if (type === "part_end") {
    for (const summary of run.article.querySelectorAll(".thinking:not(.live) summary")) summary.textContent = "Thinking";
  }
}

// Once per frame of events, not per event: each of these writes the DOM, and follow() reads layout.
function onRunFrame(run) {
  if (state.run !== run) return;
  const usage = run.usage ? {...run.usage, estimate: Math.ceil(run.chars / 4)} : {input_tokens: 0, output_tokens: 0, estimate: Math.ceil(run.chars / 4)};
  setUsage(run.article, usage, run.usage?.cost, true);
  renderStatus();
  follow();
}

function onRunEnd(run, data, onEnd) {
  if (state.run !== run) return;
  run.view.settle();
  setStatus(run.article, data.status, data.error);
  setUsage(run.article, data.usage, data.cost);
  state.run = null;
  setRunning(false);
  const said = {complete: "Reply finished", interrupted: "Reply stopped", error: `Reply failed${data.error ? `: ${data.error}` : ""}`};
  announce(said[data.status] ?? "Reply ended");
  refreshActions();
  renderStatus();
  follow();
  onEnd();
}

function onRunGone(run, onGone) {
  if (state.run !== run) return;
  goneRuns.add(run.id);
  state.run = null;
  setRunning(false);
  onGone();
}

function showToolQuestion(run, {id, name}) {
  const tool = run.view.toolElement(id) ?? run.article.querySelector(".tool:last-of-type");
  const box = document.createElement("div");
  box.className = "tool-ask";
  box.dataset.toolId = id;
  const question = document.createElement("span");
  question.textContent = `Run the tool “${name}”?`;
  const answer = async (allow) => {
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await api("POST", `/api/runs/${encodeURIComponent(run.id)}/tools/${encodeURIComponent(id)}`, {allow});
    } catch (error) {
      toast(error.message);
    }
  };
  const allow = button("Allow", {className: "button primary small", onClick: () => answer(true)});
  const deny = button("Deny", {className: "button small", onClick: () => answer(false)});
  box.append(question, allow, deny);
  (tool ?? run.article.querySelector(".content")).append(box);
  announce(`The model wants to run ${name}: Allow or Deny`);
  allow.focus({preventScroll: true});
}

/** Stop is a command to the run on the server; its end arrives as the run's last event. */
export async function stopRun() {
  const run = state.run;
  if (!run) return;
  setStopping(true);
  try {
    await api("POST", `/api/runs/${encodeURIComponent(run.id)}/stop`);
  } catch (error) {
    toast(error.message);
  } finally {
    setStopping(false);
  }
}

/** Stop following the reply on this page (the run goes on on the server). */
export function stopFollowingRun() {
  state.run?.handle?.close();
  state.run = null;
  setRunning(false);
}
