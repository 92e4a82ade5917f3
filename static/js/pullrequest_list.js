// Pull request list: a clean filter URL, check-all, and the bulk button that says what it applies to.
(() => {
  // Only the fields that say something go into the URL (the server redirects the same way without JS).
  const filters = document.getElementById("filters");
  filters.addEventListener("submit", (event) => {
    const params = new URLSearchParams(new FormData(filters));
    for (const [key, value] of [...params]) if (!value.trim()) params.delete(key);
    event.preventDefault();
    const query = params.toString();
    location.href = location.pathname + (query ? "?" + query : "");
  });
  const all = document.getElementById("check-all");
  if (all) all.addEventListener("change", () => document.querySelectorAll("input[name=ids]").forEach(b => b.checked = all.checked));
  const matching = document.getElementById("all-matching");
  if (matching) matching.addEventListener("change", () => {
    document.getElementById("bulk-apply").textContent = matching.checked ? "Apply to everything matching" : "Apply to checked rows";
  });
  // Checked before the round trip, so a missing reason keeps the checked rows; applying to everything
  // matching the filter (all of the corpus when there is none) asks first.
  const bulk = document.getElementById("bulk");
  if (bulk) bulk.addEventListener("submit", (event) => {
    const action = bulk.elements.action.value, reason = document.getElementById("bulk-reason");
    if (action === "exclude" && !reason.value.trim()) {
      event.preventDefault();
      reason.setCustomValidity("Give a reason for excluding.");
      reason.reportValidity();
      reason.addEventListener("input", () => reason.setCustomValidity(""), { once: true });
      return;
    }
    if (matching && matching.checked && !window.confirm(
      `${action === "exclude" ? "Exclude" : "Include"} all ${bulk.dataset.matching} pull requests matching this filter?`)) {
      event.preventDefault();
    }
  });
})();
