// fmn: small conveniences on top of pages that work without JavaScript.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A "Copy" button next to every secret shown once.
  for (const input of document.querySelectorAll("input[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (input.labels[0]?.textContent || "value"));
    button.addEventListener("click", async () => {
      input.select();
      try { await navigator.clipboard.writeText(input.value); button.textContent = "Copied"; }
      catch { button.textContent = "Select and copy"; }
    });
    input.after(button);
  }
  // Regexes checked as you type (JavaScript's dialect is close to Rust's; the server has
  // the last word and names the field when it refuses).
  const kind = document.getElementById("kind");
  const value = document.querySelector("input[data-regex-check]");
  if (kind && value) {
    const check = () => {
      let message = "";
      if (/regex/.test(kind.value) && value.value) {
        try { new RegExp(value.value); } catch (e) { message = "Not a valid regular expression"; }
      }
      value.setCustomValidity(message);
      value.setAttribute("aria-invalid", message ? "true" : "false");
    };
    value.addEventListener("input", check);
    kind.addEventListener("change", check);
  }
});
