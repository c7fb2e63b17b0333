// The search box for another site, in one tag:
//   <script src="https://HELP-SITE/static/js/embed.js" data-collection="SLUG" async></script>
// It mounts right after the tag (or in data-target="#id"), inside a Shadow DOM so
// that neither page's styles reach the other, and asks GET /api/search of the site
// it was loaded from, which answers pages of the origins in its EMBED_ORIGINS.
// It builds every node itself (no innerHTML: a host page's Trusted Types and CSP
// have nothing to refuse), and nothing it does throws into the host page.
(() => {
  "use strict";
  const script = document.currentScript; // null once the file has run: read it now
  if (!script || !script.src) return;
  const site = new URL(script.src).origin;
  const collection = script.dataset.collection || "";
  const target = script.dataset.target || "";
  const RESULTS = 5;
  const DELAY_MS = 300; // as the site's own page: a search once typing pauses
  const CSS = `
:host { all: initial; display: block; max-width: 40rem; color: #1d2330;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
label { display: block; font-weight: 600; margin-bottom: .3rem; }
.query { display: flex; gap: .5rem; }
input { flex: 1; min-width: 0; font: inherit; color: inherit; background: #fff;
  padding: .5rem .7rem; border: 1px solid #8a94a6; border-radius: 8px; }
button { font: inherit; padding: 0 1rem; border: 0; border-radius: 8px;
  background: #2f5fd0; color: #fff; cursor: pointer; }
ol { list-style: none; margin: .6rem 0 0; padding: 0; }
li { background: #fff; border: 1px solid #dde2ea; border-radius: 8px;
  padding: .6rem .9rem; margin-bottom: .5rem; }
a { color: #2f5fd0; font-weight: 600; }
.kind { display: block; font-size: .75rem; color: #5b6475; text-transform: uppercase;
  letter-spacing: .04em; }
.snippet { margin: .2rem 0 0; color: #333a48; font-size: .93rem; overflow-wrap: anywhere; }
mark { background: #fff1a8; color: inherit; padding: 0 .1em; }
.note, .error { margin: .6rem 0 0; padding: .4rem .8rem; border-radius: 8px; }
.note { background: #fff8e6; border: 1px solid #f0d48a; }
.error { background: #fdecec; border: 1px solid #f2b8b8; color: #8c1d1d; }
:focus-visible { outline: 3px solid #2f5fd0; outline-offset: 2px; }`;

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  // A link only to a web page, made absolute against the help site (item pages
  // are answered as paths of it).
  function webUrl(href) {
    try {
      const url = new URL(href, site);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  // snippet_html is the snippet escaped with query words in <mark> (faq/snippets.py,
  // highlight): read back as text and <mark> nodes, never parsed as HTML.
  const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'" };
  const unescape = (text) => text.replace(/&(?:amp|lt|gt|quot|#x27);/g, (e) => ENTITIES[e]);
  function snippet(html) {
    const parts = html.split(/<mark>(.*?)<\/mark>/);
    return el("p", { class: "snippet" }, ...parts.map((part, i) =>
      i % 2 ? el("mark", {}, unescape(part)) : unescape(part)));
  }

  function ask(contactUrl) {
    const href = contactUrl && webUrl(contactUrl);
    return href ? [", or ", el("a", { href }, "ask us")] : [];
  }

  // A FAQ found by its question shows the start of its answer, not the question again.
  function shown(hit) {
    if (hit.kind !== "faq" || hit.matched !== "question") return snippet(hit.snippet_html);
    const cut = hit.answer.length > 200 ? hit.answer.lastIndexOf(" ", 200) : -1;
    return el("p", { class: "snippet" }, cut > 0 ? `${hit.answer.slice(0, cut)} …` : hit.answer);
  }

  function result(hit) {
    const href = webUrl(hit.url);
    return el("li", {},
      el("span", { class: "kind" }, hit.kind === "faq" ? "FAQ" : "Document"),
      href ? el("a", { href }, hit.title) : hit.title,
      shown(hit));
  }

  function answered(found) {
    if (!found.results.length) {
      return [el("p", { class: "note" },
        `No answers found for “${found.query}”. Try other words`, ...ask(found.contact_url), ".")];
    }
    const unsure = found.confident ? [] : [el("p", { class: "note" },
      el("strong", {}, "No confident answer. "),
      "These are the nearest results; try other words", ...ask(found.contact_url), ".")];
    return [...unsure, el("ol", { "aria-label": "Results" }, ...found.results.map(result))];
  }

  function failed(status, headers) {
    if (status === 429) {
      const wait = Number(headers.get("Retry-After")) || 60;
      return `Too many searches from your address; try again in ${wait} s.`;
    }
    return status ? `The search failed (HTTP ${status}); try again later.`
      : "The search is not available here right now.";
  }

  function widget(host) {
    const shadow = host.attachShadow({ mode: "open" });
    if (shadow.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      const sheet = new CSSStyleSheet(); // no <style>, which a host's style-src may refuse
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      shadow.append(el("style", {}, CSS));
    }
    const input = el("input", { id: "q", type: "search", autocomplete: "off", maxlength: "500" });
    const form = el("form", { role: "search", "aria-label": "Help center" },
      el("label", { for: "q" }, "Search the help center"),
      el("div", { class: "query" }, input, el("button", { type: "submit" }, "Search")));
    const out = el("div", { "aria-live": "polite" });
    shadow.append(form, out);

    let timer = 0;
    let current = null; // the search in flight: an older one's answer is dropped
    async function search() {
      clearTimeout(timer);
      if (current) current.abort();
      const q = input.value.trim();
      if (!q) return out.replaceChildren();
      const mine = (current = new AbortController());
      const url = new URL("/api/search", site);
      url.search = new URLSearchParams({ q, k: RESULTS, ...(collection && { collection }) });
      let nodes;
      try {
        const answer = await fetch(url, { credentials: "omit", signal: mine.signal });
        nodes = answer.ok ? answered(await answer.json())
          : [el("p", { class: "error" }, failed(answer.status, answer.headers))];
      } catch (error) {
        if (mine.signal.aborted) return; // a newer search took its place
        nodes = [el("p", { class: "error" }, failed(0))]; // network, or CORS refused
      }
      if (mine === current) out.replaceChildren(...nodes);
    }
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(search, DELAY_MS);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    // ArrowDown from the question moves through the results' links, ArrowUp back
    // (as on the site's own page); Tab goes through the same links.
    shadow.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      const links = [...out.querySelectorAll("li > a")];
      const at = links.indexOf(shadow.activeElement);
      if (shadow.activeElement !== input && at < 0) return;
      const next = event.key === "ArrowDown" ? at + 1 : at - 1;
      if (next >= links.length) return;
      event.preventDefault();
      (next < 0 ? input : links[next]).focus();
    });
  }

  function mount() {
    try {
      let host = target ? document.querySelector(target) : null;
      if (!target && script.parentNode) {
        host = el("div", { class: "help-search" });
        script.after(host);
      }
      if (host && !host.shadowRoot) widget(host);
    } catch (error) {
      // The host page's business goes on: a box that cannot mount says so quietly.
      console.warn("help search box:", error);
    }
  }

  if (target && document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount, { once: true });
  } else {
    mount();
  }
})();
