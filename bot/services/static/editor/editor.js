// 星河客服 · 知识库编辑：确认危险操作、预览后改动提醒、防止重复提交（无内联脚本，符合 CSP）。
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // After a preview, changing the content means the preview no longer shows what would be published.
  var publish = document.getElementById("publish-btn");
  var stale = document.getElementById("stale-hint");
  if (publish) {
    var form = publish.form;
    var mark = function (event) {
      var name = event.target && event.target.name;
      if (!name || name.indexOf("preview_") === 0 || name.indexOf("publish_") === 0) { return; }
      publish.disabled = true;
      if (stale) { stale.classList.remove("hidden"); }
    };
    form.addEventListener("input", mark);
    form.addEventListener("change", mark);
  }

  // Choosing a moment means "定时生效".
  var at = document.getElementById("publish-at");
  var later = document.getElementById("when-later");
  if (at && later) {
    at.addEventListener("input", function () { later.checked = true; });
    at.addEventListener("focus", function () { later.checked = true; });
  }

  // Edits not yet published are not lost by navigating away unnoticed: the browser asks first.
  var guarded = document.querySelector("form[data-guard]");
  if (guarded) {
    var dirty = guarded.dataset.guard === "1";  // a previewed draft that is not published yet
    guarded.addEventListener("input", function (event) {
      if (event.target && event.target.name && event.target.name.indexOf("preview_") !== 0) { dirty = true; }
    });
    guarded.addEventListener("submit", function () { dirty = false; });
    window.addEventListener("beforeunload", function (event) {
      if (!dirty) { return; }
      event.preventDefault();
      event.returnValue = "";
    });
  }

  // One submission per click (the clicked button's name/value must still be sent, so nothing is disabled).
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function (event) {
      if (f.dataset.sent === "1") { event.preventDefault(); return; }
      f.dataset.sent = "1";
      window.setTimeout(function () { f.dataset.sent = ""; }, 8000);
    });
  });
})();
