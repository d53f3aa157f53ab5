/* What every console page does (base.html loads it):
 * - A button shows it is busy (aria-busy="true": Pico draws a spinner and takes no second click)
 *   from the moment its request leaves until the answer is there: a plain form post until the next
 *   page replaces this one, an htmx request until htmx has its answer (or, when the answer sends
 *   the browser elsewhere with HX-Redirect, until that page comes).
 * - Buttons that open and close a <dialog> (commandfor / command: "show-modal", "close") work in
 *   browsers that do not know those attributes yet.
 * - A <dialog data-open-on-load> opens as a modal with its page (a question the server asks once a
 *   dry run found nothing in the way: the move confirmation).
 * - A <dialog data-show-modal> that htmx brings in (the Pools page's "Delete…" confirmations, read
 *   from the server when asked for, so the page reads nothing for them) opens as a modal at once. */
(function () {
  "use strict";

  const busyButtons = new WeakMap(); // htmx source element -> the button shown busy for it

  function setBusy(button, busy) {
    if (!button) return;
    if (busy) button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
  }

  document.addEventListener("submit", (event) => {
    if (event.defaultPrevented) return; // htmx sends it (below), or a script stopped it
    const form = event.target;
    if (form.dataset.sending) {
      event.preventDefault(); // a second click while the first post is on its way
      return;
    }
    form.dataset.sending = "true";
    setBusy(event.submitter || form.querySelector("[type=submit]"), true);
  });

  // Going back to a page the browser kept shows it as it was left, busy buttons included.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sending]").forEach((form) => delete form.dataset.sending);
    document.querySelectorAll("[aria-busy=true]").forEach((element) => setBusy(element, false));
  });

  function buttonOf(source, trigger) {
    if (source.matches("form")) {
      // A form sent by a submit (a click or Enter); not one sent as its fields change.
      return trigger && trigger.type === "submit"
        ? trigger.submitter || source.querySelector("[type=submit]")
        : null;
    }
    return source.closest("button, [role=button], [role=tab]");
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    const source = event.detail.elt;
    const button = buttonOf(source, event.detail.requestConfig && event.detail.requestConfig.triggeringEvent);
    if (!button) return;
    busyButtons.set(source, button);
    setBusy(button, true);
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const source = event.detail.elt;
    const button = busyButtons.get(source);
    busyButtons.delete(source);
    const xhr = event.detail.xhr;
    if (event.detail.successful && xhr && xhr.getResponseHeader("HX-Redirect")) return; // leaving
    setBusy(button, false);
  });

  function openAskedDialogs() {
    document.querySelectorAll("dialog[data-open-on-load]").forEach((dialog) => {
      if (!dialog.open) dialog.showModal();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", openAskedDialogs);
  else openAskedDialogs();
  document.addEventListener("htmx:load", (event) => {
    const root = event.detail.elt;
    if (!(root instanceof Element)) return;
    const dialogs = root.matches("dialog[data-show-modal]") ? [root] : root.querySelectorAll("dialog[data-show-modal]");
    dialogs.forEach((dialog) => {
      if (!dialog.open) dialog.showModal();
    });
  });

  if (!("commandForElement" in HTMLButtonElement.prototype)) {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[commandfor]");
      const dialog = button && document.getElementById(button.getAttribute("commandfor"));
      if (!(dialog instanceof HTMLDialogElement)) return;
      const command = button.getAttribute("command");
      if (command === "show-modal" && !dialog.open) dialog.showModal();
      else if (command === "close") dialog.close();
    });
  }
})();
