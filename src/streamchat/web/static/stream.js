// The page's streaming client: applies a run's events to one message, and follows a run over SSE.
//
// Entry points (a benchmark can drive either):
//
//   const view = new ReplyView(article.querySelector(".content"));
//   view.apply("blocks", {part: 0, html: "<p>Hello</p>\n"});   // one event of the protocol
//
//   const handle = followRun("/api/runs/RUN_ID/events", view, {after: 0, onEvent, onFrame, onEnd, onGone});
//   handle.close();  handle.lastSeq;
//
// The server sends sanitized HTML: finished Markdown blocks once ("blocks", appended and never
// touched again) and the unfinished last block ("tail", patched in place: only what changed since the
// last frame is replaced, usually its end). A code block streams by
// lines: its empty block once ("fence"), then its finished lines appended inside its <code>
// ("lines"), and the tail is its unfinished line. So the work of one frame is the size of the tail
// (one block, or one line of code), never the size of the reply, and nothing here parses Markdown.
// Event types and fields are documented in streamchat/web/protocol.py.

const EVENT_TYPES = [
  "start", "part", "blocks", "fence", "lines", "tail", "input", "part_end", "tool_call", "tool_ask", "tool_answer",
  "tool_result", "usage", "window", "end",
];

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

/** True when `a` and `b` are elements of the same name with the same attributes (children aside). */
function sameShell(a, b) {
  if (a.nodeType !== Node.ELEMENT_NODE || b.nodeType !== Node.ELEMENT_NODE) return false;
  if (a.localName !== b.localName || a.namespaceURI !== b.namespaceURI) return false;
  if (a.attributes.length !== b.attributes.length) return false;
  for (const attr of b.attributes) {
    if (a.getAttributeNS(attr.namespaceURI, attr.localName) !== attr.value) return false;
  }
  return true;
}

/**
 * Make `target`'s children equal to those of `source` (a parsed fragment, consumed), keeping the
 * nodes that did not change: a tail grows at its end, so swapping it whole each frame would style,
 * lay out and shape its unchanged start again (a long paragraph, a table, a list) for nothing.
 */
function patchChildren(target, source) {
  let old = target.firstChild;
  let next = source.firstChild;
  while (next) {
    const following = next.nextSibling;
    if (!old) {
      target.append(next);
    } else if (old.isEqualNode(next)) {
      old = old.nextSibling;
    } else if (old.nodeType === Node.TEXT_NODE && next.nodeType === Node.TEXT_NODE) {
      old.data = next.data;
      old = old.nextSibling;
    } else if (sameShell(old, next)) {
      patchChildren(old, next);
      old = old.nextSibling;
    } else {
      const after = old.nextSibling;
      old.replaceWith(next);
      old = after;
    }
    next = following;
  }
  while (old) {
    const after = old.nextSibling;
    old.remove();
    old = after;
  }
}

/** Draws one reply from its events into its `.content` element. */
export class ReplyView {
  /** @param {HTMLElement} content the message's `.content` element */
  constructor(content) {
    this.content = content;
    this.parts = new Map(); // part index -> {kind, element, body, tail, input, lineTail, fence}
  }

  /** Apply one event (`type`, decoded `data`); unknown types are ignored. */
  apply(type, data) {
    switch (type) {
      case "part": this.openPart(data); break;
      case "blocks": this.appendBlocks(data); break;
      case "fence": this.openFence(data); break;
      case "lines": this.appendLines(data); break;
      case "tail": this.setTail(data); break;
      case "input": this.appendInput(data); break;
      case "part_end": this.endPart(data); break;
      case "tool_call": this.nameTool(data); break;
      case "tool_result": this.showResult(data); break;
      default: break;
    }
  }

  /** Remove any live tail (the run ended without closing its part, e.g. a dropped log). */
  settle() {
    for (const part of this.parts.values()) {
      this.closeFence(part);
      part.tail?.remove();
    }
  }

  openPart({part, kind, html}) {
    let element = null;
    let body = this.content;
    if (html) {
      this.content.append(fragment(html));
      element = this.content.lastElementChild;
      if (kind === "thinking") {
        body = element.querySelector(".thinking-body");
        element.classList.add("live");
      }
    }
    const entry = {kind, element, body, tail: null, input: null, lineTail: null, fence: null};
    if (kind !== "tool_use") {
      entry.tail = document.createElement("div");
      entry.tail.className = "tail";
      body.append(entry.tail);
    } else {
      entry.input = element?.querySelector(".tool-input") ?? null;
      element?.classList.add("live");
    }
    this.parts.set(part, entry);
  }

  part(index) {
    let entry = this.parts.get(index);
    if (!entry) { // a part we did not see open: text straight into the content
      this.openPart({part: index, kind: "text", html: ""});
      entry = this.parts.get(index);
    }
    return entry;
  }

  appendBlocks({part, html}) {
    this.appendFragment(this.part(part), fragment(html));
  }

  /** A code block that streams by lines: appended once; its unfinished line is a tail in its <code>. */
  openFence({part, html}) {
    const entry = this.part(part);
    const block = fragment(html);
    const element = block.firstElementChild;
    const code = element?.querySelector("code") ?? null;
    // What follows the block (its newline) waits until the block is finished, so the finished text
    // only ever grows at its end.
    const after = document.createDocumentFragment();
    while (element?.nextSibling) after.append(element.nextSibling);
    this.appendFragment(entry, block);
    if (!code) {
      element?.after(after);
      return;
    }
    entry.lineTail = document.createElement("span");
    entry.lineTail.className = "tail";
    code.append(entry.lineTail);
    entry.fence = {element, after};
    if (entry.tail) {
      entry.tail.replaceChildren(); // it held the fence's opening, now drawn by the block itself
      entry.tail.hidden = true;
    }
  }

  appendLines({part, html, end}) {
    const entry = this.part(part);
    if (!entry.lineTail) return;
    if (html) entry.lineTail.before(fragment(html));
    if (end) this.closeFence(entry);
  }

  closeFence(entry) {
    entry.lineTail?.remove();
    entry.lineTail = null;
    entry.fence?.element.after(entry.fence.after);
    entry.fence = null;
    if (entry.tail) entry.tail.hidden = false;
  }

  appendFragment(entry, content) {
    if (entry.tail) entry.tail.before(content);
    else entry.body.append(content);
  }

  setTail({part, html}) {
    const entry = this.part(part);
    const target = entry.lineTail ?? entry.tail;
    if (target) patchChildren(target, fragment(html));
  }

  appendInput({part, text}) {
    const entry = this.part(part);
    entry.input?.append(text);
  }

  endPart({part, html}) {
    const entry = this.parts.get(part);
    if (!entry) return;
    this.closeFence(entry);
    entry.tail?.remove();
    entry.tail = null;
    if (html && entry.element) {
      const replacement = fragment(html).firstElementChild;
      if (replacement) {
        entry.element.replaceWith(replacement);
        entry.element = replacement;
      }
    }
    entry.element?.classList.remove("live");
  }

  nameTool({part, id}) {
    const entry = this.parts.get(part);
    if (entry?.element) entry.element.dataset.toolId = id;
  }

  toolElement(id) {
    for (const element of this.content.querySelectorAll(".tool")) {
      if (element.dataset.toolId === id) return element;
    }
    return null;
  }

  showResult({id, html}) {
    const element = this.toolElement(id);
    if (element) {
      element.querySelector(".tool-result")?.remove();
      element.append(fragment(html));
    }
  }
}

/** The tails of a batch that the next event of their part replaces anyway (another tail). */
function supersededTails(batch) {
  const skip = new Set();
  const lastTail = new Map(); // part -> index of its tail seen last, while nothing else of the part followed
  batch.forEach(([type, data], i) => {
    if (data?.part === undefined) return;
    if (type === "tail" && lastTail.has(data.part)) skip.add(lastTail.get(data.part));
    if (type === "tail") lastTail.set(data.part, i);
    else if (type !== "blocks") lastTail.delete(data.part); // blocks go before the tail: it still applies
  });
  return skip;
}

/**
 * Follow a run's events from the one after `after`. EventSource reconnects by itself and sends
 * Last-Event-ID; events at or below the last seq seen are dropped, so nothing applies twice.
 * Events are applied once per animation frame, all that arrived since the last one, and only then
 * handed to `onEvent`; then `onFrame()` once, for what the page draws around the reply (status,
 * scrolling): a frame is one DOM update and one layout however many events it holds.
 * `onGone` means the events can no longer be had: reload the message from the store.
 */
export function followRun(url, view, {after = 0, onEvent, onFrame, onEnd, onGone} = {}) {
  let last = after;
  let finished = false;
  let closed = false;
  let queued = [];
  let scheduled = false;
  const source = new EventSource(after ? `${url}?after=${after}` : url);
  const finish = (callback, value) => {
    if (finished) return;
    finished = true;
    source.close();
    callback?.(value);
  };
  const flush = () => {
    scheduled = false;
    const batch = queued;
    queued = [];
    if (closed) return;
    const superseded = supersededTails(batch);
    batch.forEach(([type, data], i) => { if (!superseded.has(i)) view.apply(type, data); });
    let end = null;
    for (const [type, data, seq] of batch) {
      onEvent?.(type, data, seq);
      if (type === "end") end = data;
    }
    if (batch.length) onFrame?.();
    if (end) finish(onEnd, end);
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // A hidden tab draws no frames: apply its events from a task instead.
    if (document.hidden) setTimeout(flush, 0);
    else requestAnimationFrame(flush);
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (event) => {
      const seq = Number(event.lastEventId);
      if (!(seq > last)) return;
      last = seq;
      queued.push([type, JSON.parse(event.data), seq]);
      if (type === "end") source.close(); // nothing follows; EventSource must not reconnect meanwhile
      schedule();
    });
  }
  const gone = () => {
    flush(); // what arrived is still drawn; the page reloads the message next
    finish(onGone);
  };
  source.addEventListener("gone", gone);
  source.addEventListener("error", () => {
    // CLOSED: the server answered with something that is not a stream (the run is unknown or over).
    if (source.readyState === EventSource.CLOSED && !finished && !queued.some(([type]) => type === "end")) gone();
  });
  return {
    close() { finished = true; closed = true; source.close(); },
    get lastSeq() { return last; },
  };
}
