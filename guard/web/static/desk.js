// The desk's live queue: new open tasks arrive as server-sent events holding a rendered table row.
// Everything else on the desk works without this script.
(function () {
  "use strict";
  var body = document.getElementById("queue-body");
  if (!body || !window.EventSource || document.body.dataset.filter === "mine") {
    return;
  }
  var source = new EventSource("/desk/events?lang=" + encodeURIComponent(document.body.dataset.lang || "en"));
  source.addEventListener("task", function (event) {
    var holder = document.createElement("template");
    holder.innerHTML = event.data.trim();
    var row = holder.content.firstElementChild;
    if (!row || document.getElementById(row.id)) {
      return;
    }
    var empty = document.getElementById("queue-empty");
    if (empty) {
      empty.remove();
    }
    var before = null;
    Array.prototype.some.call(body.children, function (other) {
      if ((other.dataset.rank || "") > row.dataset.rank) {
        before = other;
        return true;
      }
      return false;
    });
    body.insertBefore(row, before);
  });
})();
