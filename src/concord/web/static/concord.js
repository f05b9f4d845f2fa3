// A form whose submit button carries data-busy says it is working while the request runs,
// and cannot be sent twice (a large upload takes a while to be read).
document.addEventListener("submit", (event) => {
  const button = event.target.querySelector("button[data-busy]");
  if (!button) return;
  button.disabled = true;
  button.textContent = button.dataset.busy;
  event.target.setAttribute("aria-busy", "true");
});
