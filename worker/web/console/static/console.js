// certsms console: progressive enhancement only; every page works without it.
(function () {
  "use strict";
  // A confirmation before destructive actions (forms with data-confirm).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
  // An opt-in auto-refresh (checkbox with data-autorefresh="seconds"), remembered per page.
  document.querySelectorAll("input[data-autorefresh]").forEach(function (box) {
    var key = "certsms-refresh:" + location.pathname;
    var seconds = parseInt(box.getAttribute("data-autorefresh"), 10) || 5;
    var timer = null;
    function apply() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (box.checked) { timer = setTimeout(function () { location.reload(); }, seconds * 1000); }
      try { sessionStorage.setItem(key, box.checked ? "1" : ""); } catch (e) { /* private mode */ }
    }
    try { box.checked = sessionStorage.getItem(key) === "1"; } catch (e) { /* private mode */ }
    box.addEventListener("change", apply);
    apply();
  });
})();
