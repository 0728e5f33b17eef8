// Building DOM from untrusted text. Everything the API returns (quotes, speaker names,
// actor and topic names, source URLs) reaches the page through these helpers only:
// text becomes Text nodes, never markup, and a link needs an http(s) URL.

/** An element with fixed attributes (from our code) and children (nodes or plain text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "title") node.title = String(value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== undefined && c !== null));
}

/** The URL if it is absolute http(s), else null (no javascript:, data:, relative...). */
export function safeHttpUrl(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** A link for an http(s) URL, or the URL as plain text when it is anything else. */
export function sourceLink(value) {
  const href = safeHttpUrl(value);
  if (href === null) return document.createTextNode(value ? String(value) : "");
  return el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, href);
}

/** YYYY-MM-DD of an ISO time or a millisecond timestamp (UTC). */
export function day(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().slice(0, 10);
}
