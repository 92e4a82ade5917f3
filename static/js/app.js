// Shared helpers: polling that slows down when the tab is hidden, and confirmations on dangerous forms.
window.hrgc = {
  poll(fn, visibleMs = 2000, hiddenMs = 15000) {
    let timer = null, stopped = false;
    const tick = async () => {
      if (stopped) return;
      let again = true;
      try { again = (await fn()) !== false; } catch (e) { console.warn(e); }
      if (again && !stopped) timer = setTimeout(tick, document.hidden ? hiddenMs : visibleMs);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  },
};
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
