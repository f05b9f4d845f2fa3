// A form whose action cannot be taken back (withdrawing from a case, revoking a token) asks
// first, in the words of its data-confirm. Listened to before the busy marker below, so that
// a form not sent is not left marked as working.
document.addEventListener(
  "submit",
  (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  },
  true,
);

// A form whose submit button carries data-busy says it is working while the request runs,
// and cannot be sent twice (a large upload takes a while to be read).
document.addEventListener("submit", (event) => {
  const button = event.target.querySelector("button[data-busy]");
  if (!button) return;
  button.disabled = true;
  button.textContent = button.dataset.busy;
  event.target.setAttribute("aria-busy", "true");
});

// A form that failed lower on a long page (a case's techniques, its comments) is answered
// with the whole page again: bring its error into view, or the click seems to do nothing.
document.addEventListener("DOMContentLoaded", () => {
  const error = document.querySelector(".form-error");
  if (!error) return;
  const box = error.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) error.scrollIntoView({ block: "center" });
});

// On a phone the navigation is one row that scrolls sideways: show the current page's link.
document.addEventListener("DOMContentLoaded", () => {
  const nav = document.querySelector("header.top nav");
  const current = nav && nav.querySelector("a[aria-current]");
  if (!current || nav.scrollWidth <= nav.clientWidth) return;
  nav.scrollLeft = current.offsetLeft - nav.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
});

// A file larger than the server takes (data-max-bytes) is told when chosen, and the form is
// not sent: refused by the server, the form's other choices would be lost with it.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.dataset.maxBytes) return;
  const limit = Number(input.dataset.maxBytes);
  const tooLarge = Array.from(input.files || []).some((file) => file.size > limit);
  input.setCustomValidity(tooLarge ? input.dataset.tooLarge : "");
  if (tooLarge) input.reportValidity();
});
