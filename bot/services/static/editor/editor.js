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
      if (!name || name.indexOf("preview_") === 0) { return; }
      publish.disabled = true;
      if (stale) { stale.classList.remove("hidden"); }
    };
    form.addEventListener("input", mark);
    form.addEventListener("change", mark);
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
