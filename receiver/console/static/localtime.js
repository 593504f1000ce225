// receiver console: show each <time datetime data-local> in the browser's own time
// zone as well; the UTC text the server wrote stays in the title. No inline scripts
// (the CSP refuses them): this file is loaded with <script src defer>.
"use strict";
(function () {
  function pad(n) { return String(n).padStart(2, "0"); }
  document.querySelectorAll("time[data-local][datetime]").forEach(function (el) {
    var at = new Date(el.getAttribute("datetime"));
    if (isNaN(at.getTime())) { return; }
    var offset = -at.getTimezoneOffset();
    if (offset === 0) { return; }  // the browser is on UTC: the text already says it
    var sign = offset >= 0 ? "+" : "-";
    var zone = "UTC" + sign + pad(Math.floor(Math.abs(offset) / 60)) + ":" + pad(Math.abs(offset) % 60);
    el.title = el.textContent;
    el.textContent = at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + " " +
      pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds()) + " " + zone;
  });
})();
