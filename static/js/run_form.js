// The new-run form: highlight changed settings, ask the server for the parameter count and a preset's defaults.
(() => {
  const form = document.getElementById("run-form");
  if (!form) return;
  const settings = [...form.querySelectorAll(".setting")];
  const valueOf = (el) => el.type === "checkbox" ? String(el.checked) : el.value;
  const sameValue = (el, value) => el.type === "checkbox" ? String(el.checked) === String(value)
    : (el.type === "number" ? Number(el.value) === Number(value) : el.value === String(value));
  const isChanged = (el) => !sameValue(el, el.dataset.default);
  const mark = () => settings.forEach((el) => el.closest(".form-row").classList.toggle("changed", isChanged(el)));
  let pending = 0;
  async function preview(presetChanged) {
    const params = new URLSearchParams();
    for (const key of ["family", "preset", "dataset"]) params.set(key, form.elements[key].value);
    const changed = settings.filter(isChanged);
    changed.forEach((el) => params.set(el.name, valueOf(el)));
    const ticket = ++pending;
    const response = await fetch(form.getAttribute("data-preview") + "?" + params);
    const data = await response.json();
    if (ticket !== pending) return;
    if (presetChanged && data.defaults) {
      // What the user typed while the request was out is theirs too: never overwrite it.
      const edited = new Set([...changed, ...settings.filter(isChanged)]);
      for (const el of settings) {
        const value = data.defaults[el.name];
        if (value === undefined) continue;
        if (!edited.has(el)) { if (el.type === "checkbox") el.checked = !!value; else el.value = value; }
        el.dataset.default = String(value);
        const help = el.closest(".form-row").querySelector(".help.preset");
        if (help) help.textContent = "preset: " + (el.type === "checkbox" ? (value ? "True" : "False") : value);
      }
    }
    mark();
    const count = document.getElementById("param-count"), note = document.getElementById("param-note");
    count.textContent = data.parameter_count ? data.parameter_count.toLocaleString("en") : "—";
    if (data.parameter_count && !data.error) {
      note.textContent = `preset ${data.preset_parameter_count.toLocaleString("en")} at vocabulary ${data.vocab_size.toLocaleString("en")}`
        + ` · ${data.tokens_per_step.toLocaleString("en")} tokens per step`;
      note.classList.remove("bad");
    } else {
      note.textContent = data.error || "cannot compute";
      note.classList.add("bad");
    }
  }
  for (const key of ["family", "preset", "dataset"]) form.elements[key].addEventListener("change", () => preview(true));
  settings.forEach((el) => el.addEventListener("change", () => preview(false)));
  settings.forEach((el) => el.addEventListener("input", mark));  // highlight while typing, not only on blur
  preview(false);
})();
