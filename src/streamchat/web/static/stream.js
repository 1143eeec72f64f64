// The page's streaming client: applies a run's events to one message, and follows a run over SSE.
//
// Entry points (a benchmark can drive either):
//
//   const view = new ReplyView(article.querySelector(".content"));
//   view.apply("blocks", {part: 0, html: "<p>Hello</p>\n"});   // one event of the protocol
//
//   const handle = followRun("/api/runs/RUN_ID/events", view, {after: 0, onEvent, onEnd, onGone});
//   handle.close();  handle.lastSeq;
//
// The server sends sanitized HTML: finished Markdown blocks once ("blocks", appended and never
// touched again) and the unfinished last block ("tail", swapped in place). So the work of one
// frame is the size of the tail, never the size of the reply, and nothing here parses Markdown.
// Event types and fields are documented in streamchat/web/protocol.py.

const EVENT_TYPES = [
  "start", "part", "blocks", "tail", "input", "part_end", "tool_call", "tool_ask", "tool_answer",
  "tool_result", "usage", "window", "end",
];

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

/** Draws one reply from its events into its `.content` element. */
export class ReplyView {
  /** @param {HTMLElement} content the message's `.content` element */
  constructor(content) {
    this.content = content;
    this.parts = new Map(); // part index -> {kind, element, body, tail, input}
  }

  /** Apply one event (`type`, decoded `data`); unknown types are ignored. */
  apply(type, data) {
    switch (type) {
      case "part": this.openPart(data); break;
      case "blocks": this.appendBlocks(data); break;
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
    for (const part of this.parts.values()) part.tail?.remove();
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
    const entry = {kind, element, body, tail: null, input: null};
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
    const entry = this.part(part);
    if (entry.tail) entry.tail.before(fragment(html));
    else entry.body.append(fragment(html));
  }

  setTail({part, html}) {
    const entry = this.part(part);
    if (entry.tail) entry.tail.innerHTML = html;
  }

  appendInput({part, text}) {
    const entry = this.part(part);
    entry.input?.append(text);
  }

  endPart({part, html}) {
    const entry = this.parts.get(part);
    if (!entry) return;
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

/**
 * Follow a run's events from the one after `after`. EventSource reconnects by itself and sends
 * Last-Event-ID; events at or below the last seq seen are dropped, so nothing applies twice.
 * `onGone` means the events can no longer be had: reload the message from the store.
 */
export function followRun(url, view, {after = 0, onEvent, onEnd, onGone} = {}) {
  let last = after;
  let finished = false;
  const source = new EventSource(after ? `${url}?after=${after}` : url);
  const finish = (callback, value) => {
    if (finished) return;
    finished = true;
    source.close();
    callback?.(value);
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (event) => {
      const seq = Number(event.lastEventId);
      if (!(seq > last)) return;
      last = seq;
      const data = JSON.parse(event.data);
      view.apply(type, data);
      onEvent?.(type, data, seq);
      if (type === "end") finish(onEnd, data);
    });
  }
  source.addEventListener("gone", () => finish(onGone));
  source.addEventListener("error", () => {
    // CLOSED: the server answered with something that is not a stream (the run is unknown or over).
    if (source.readyState === EventSource.CLOSED) finish(onGone);
  });
  return {
    close() { finished = true; source.close(); },
    get lastSeq() { return last; },
  };
}
