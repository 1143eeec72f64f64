// The usage chart: input and output tokens of every reply as bars, the context budget as a line.
// Drawn as SVG by the page itself (no chart library), so the sliding window's flat per-turn input
// cost is visible at a glance.

const SVG = "http://www.w3.org/2000/svg";

function node(name, attributes = {}, text = "") {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text) element.textContent = text;
  return element;
}

export function compact(n) {
  if (n == null) return "?";
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return String(n);
}

/**
 * Draw `series` ([{input_tokens, output_tokens}], one per reply) into `container`, with the
 * `budget` (context tokens, or null) as a horizontal line.
 */
export function drawUsageChart(container, series, budget) {
  container.replaceChildren();
  if (!series.length) {
    const empty = document.createElement("p");
    empty.className = "chart-empty";
    empty.textContent = "No replies yet.";
    container.append(empty);
    return;
  }
  const width = 320;
  const height = 140;
  const pad = {left: 36, right: 8, top: 10, bottom: 20};
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const top = Math.max(1, budget || 0, ...series.map((t) => Math.max(t.input_tokens, t.output_tokens)));
  const y = (value) => pad.top + plotH - (value / top) * plotH;
  const slot = plotW / series.length;
  const bar = Math.max(1.5, Math.min(14, slot / 2.6));
  const svg = node("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart"});
  const label = `Usage chart: ${series.length} replies; last reply ${series.at(-1).input_tokens} input and ` +
    `${series.at(-1).output_tokens} output tokens${budget ? `; budget ${budget} tokens` : ""}`;
  svg.setAttribute("aria-label", label);
  svg.append(node("title", {}, label));
  for (const fraction of [0, 0.5, 1]) {
    const value = Math.round(top * fraction);
    svg.append(node("line", {x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: "grid"}));
    svg.append(node("text", {x: pad.left - 4, y: y(value) + 3, class: "axis", "text-anchor": "end"}, compact(value)));
  }
  series.forEach((turn, i) => {
    const x = pad.left + i * slot + slot / 2;
    const input = node("rect", {x: x - bar, y: y(turn.input_tokens), width: bar,
      height: Math.max(0.5, pad.top + plotH - y(turn.input_tokens)), class: "bar-input"});
    input.append(node("title", {}, `Reply ${i + 1}: ${turn.input_tokens} input tokens`));
    const output = node("rect", {x, y: y(turn.output_tokens), width: bar,
      height: Math.max(0.5, pad.top + plotH - y(turn.output_tokens)), class: "bar-output"});
    output.append(node("title", {}, `Reply ${i + 1}: ${turn.output_tokens} output tokens`));
    svg.append(input, output);
  });
  if (budget) {
    svg.append(node("line", {x1: pad.left, x2: width - pad.right, y1: y(budget), y2: y(budget), class: "budget"}));
    svg.append(node("text", {x: width - pad.right, y: y(budget) - 3, class: "axis budget-label", "text-anchor": "end"},
      `budget ${compact(budget)}`));
  }
  svg.append(node("text", {x: pad.left, y: height - 5, class: "axis"}, "1"));
  svg.append(node("text", {x: width - pad.right, y: height - 5, class: "axis", "text-anchor": "end"},
    String(series.length)));
  const legend = document.createElement("div");
  legend.className = "chart-legend";
  legend.innerHTML = '<span class="key key-input"></span>input <span class="key key-output"></span>output' +
    (budget ? ' <span class="key key-budget"></span>budget' : "");
  container.append(svg, legend);
}
