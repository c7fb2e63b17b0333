// Keyboard through the results: ArrowDown from the question (or a result) moves to
// the next result's link, ArrowUp to the one before (from the first: the question).
// Without this file, Tab goes through the same links.
document.addEventListener("keydown", (event) => {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const question = document.getElementById("id_q");
  const links = [...document.querySelectorAll("#results .result h2 a")];
  const at = links.indexOf(document.activeElement);
  if (document.activeElement !== question && at < 0) return;
  const next = event.key === "ArrowDown" ? at + 1 : at - 1;
  if (next >= links.length) return;
  event.preventDefault();
  (next < 0 ? question : links[next]).focus();
});

// A result opened: which search, which result and where, sent as the link is
// followed (a beacon outlives the page). Without this file, no click is counted.
const opened = (event) => {
  const link = event.target.closest("#results .result h2 a");
  const result = link && link.closest(".result[data-search]");
  if (!result || (event.type === "auxclick" && event.button !== 1)) return;
  const sent = new FormData();
  sent.append("search", result.dataset.search);
  sent.append("position", result.dataset.position);
  sent.append("kind", result.dataset.kind);
  sent.append("id", result.dataset.id);
  navigator.sendBeacon(document.getElementById("results").dataset.click, sent);
};
document.addEventListener("click", opened);
document.addEventListener("auxclick", opened);
