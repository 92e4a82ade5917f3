// System page: wait for the worker check's answer.
(() => {
  const box = document.getElementById("check-result");
  if (!box) return;

  // Mark the answering worker in the clusters table (its PID is one of a cluster's worker PIDs).
  const mark = (result) => {
    let found = false;
    for (const el of document.querySelectorAll(".worker-pid")) {
      const row = el.closest("tr");
      if (String(result.pid) === el.dataset.pid && row.dataset.host === result.host) {
        el.classList.add("answered"); el.title = "answered Check workers"; row.classList.add("answered");
        el.textContent = `${el.dataset.pid} ✓ answered`;
        found = true;
      }
    }
    return found;
  };

  // A worker recycled after its tasks (or just started) answers under a PID the table, rendered before,
  // does not list yet: its cluster publishes the new PID within seconds, so read the table again a few times.
  const refreshUntilMarked = async (result) => {
    for (let attempt = 0; attempt < 6; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const html = await (await fetch(location.href)).text();
      const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("#clusters tbody");
      const current = document.querySelector("#clusters tbody");
      if (fresh && current) current.replaceWith(fresh);
      if (mark(result)) return;
    }
  };

  hrgc.poll(async () => {
    const r = await fetch(box.dataset.url);
    const data = await r.json();
    if (!data.done) return true;
    box.className = data.success ? "ok" : "bad";
    box.textContent = data.success
      ? `Worker ${data.result.worker} answered at ${data.result.at} (${data.result.database}) in ${data.seconds.toFixed(2)} s.`
      : `The task failed: ${data.result}`;
    if (data.success && !mark(data.result)) refreshUntilMarked(data.result);
    return false;
  }, 1000, 5000);
})();
