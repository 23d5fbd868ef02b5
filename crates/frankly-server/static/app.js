// Keyboard shortcuts for the review pages: c claim, r reveal media, d decide, n next.
// The pages work without this file; it only adds keys, and seeking a
// video to a frame chosen in its strip or timeline.
document.addEventListener("click", (event) => {
  const mark = event.target instanceof Element ? event.target.closest("[data-seconds]") : null;
  if (!mark) return;
  const video = mark.closest("figure.video")?.querySelector("video");
  if (!video) return;
  video.currentTime = Number(mark.dataset.seconds);
  video.scrollIntoView({ block: "nearest" });
});
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  if (event.key === "r") {
    document.body.classList.toggle("revealed");
  } else if (event.key === "c") {
    const button = document.querySelector("button.claim:not([disabled])");
    if (button) button.click();
  } else if (event.key === "d") {
    const action = document.getElementById("action");
    if (action) { action.focus(); action.scrollIntoView({ block: "center" }); }
  } else if (event.key === "n") {
    const next = document.querySelector("button[data-key=n]");
    if (next) next.click();
  } else {
    return;
  }
  event.preventDefault();
});
