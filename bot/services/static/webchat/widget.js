/*
 * 星河国际影城 在线客服: embeddable chat launcher. Put this on any page of the cinema's site:
 *
 *   <script src="https://CHAT-HOST/widget.js" async></script>
 *
 * and a floating button opens the chat. By default the socket goes to CHAT-HOST (which relays it to
 * Rasa); data-rasa="https://RASA-HOST" connects straight to a public Rasa server instead (which then
 * needs `rasa run --cors <this site's origin>`). Optional: data-title="…".
 */
(function () {
  'use strict';
  if (window.__xingheWebchatLoaded) return;
  window.__xingheWebchatLoaded = true;

  var VERSION = '__XINGHE_ASSET_VERSION__';
  var script = document.currentScript || (function () {
    var all = document.getElementsByTagName('script');
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) return all[i];
    }
    return null;
  })();
  if (!script) { if (window.console) console.error('星河客服: cannot find the widget.js <script> tag'); return; }

  var base = new URL('.', script.src);               // https://CHAT-HOST/ (or a sub-path it is served under)
  var socketUrl = base.protocol + '//' + base.host;
  var socketPath = base.pathname + 'webchat/socket.io/';
  var rasa = script.getAttribute('data-rasa');
  if (rasa) {
    // socket.io-client reads a URL path as a namespace: split it into origin + socket.io path instead.
    var r = new URL(rasa, window.location.href);
    socketUrl = r.protocol + '//' + r.host;
    socketPath = r.pathname.replace(/\/+$/, '') + '/socket.io/';
  }
  var title = script.getAttribute('data-title');

  function asset(path) { return new URL(path + '?v=' + VERSION, base).href; }

  function loadScript(src, done) {
    var s = document.createElement('script');
    s.src = src;
    s.async = false;
    s.onload = done;
    s.onerror = function () { if (window.console) console.error('星河客服: failed to load ' + src); };
    (document.head || document.body).appendChild(s);
  }

  var css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = asset('static/webchat/xinghe-webchat.css');
  (document.head || document.body).appendChild(css);

  // The bundle is UMD: on a page that uses an AMD loader it would register a module instead of setting
  // window.WebChat, so hide `define` while it runs.
  var amd = window.define;
  if (amd && amd.amd) window.define = undefined;
  loadScript(asset('static/webchat/vendor/rasa-webchat.js'), function () {
    if (amd && amd.amd) window.define = amd;
    loadScript(asset('static/webchat/xinghe-webchat.js'), function () {
      window.XingheWebchat.mount({ socketUrl: socketUrl, socketPath: socketPath, embedded: false,
                                   title: title || undefined });
    });
  });
})();
