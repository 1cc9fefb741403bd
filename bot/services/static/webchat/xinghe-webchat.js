/*
 * 星河国际影城 在线客服: mounts the vendored rasa-webchat widget (window.WebChat, see vendor/VERSION.txt)
 * with the cinema's Chinese texts and colours, and fills in what the widget lacks for keyboard and
 * screen-reader users (labels, focusable quick replies, a live message log) and for Chinese input
 * methods (Enter that confirms an IME candidate must not send the message).
 *
 * XingheWebchat.mount({socketUrl, socketPath, embedded, element, title}) is called by /chat and by
 * /widget.js. Conversation state (session id and messages) is kept in localStorage by the widget, so
 * a reload or a reconnect rejoins the same Rasa conversation (socketio session_persistence) and shows
 * the history. Messages sent to the session from outside a user turn (an agent's replies while an
 * agent holds the conversation) arrive as ordinary bot_uttered events and are shown the same way.
 */
(function () {
  'use strict';

  var TEXT = {
    title: '星河国际影城 在线客服',
    subtitle: '智能客服小星 · 可随时转人工',
    hint: '请输入您的问题，按回车发送',
    connecting: '正在连接客服…',
    input: '输入您的问题',
    send: '发送',
    log: '对话记录',
    open: '打开在线客服',
    close: '关闭在线客服',
    fullscreen: '切换全屏',
    avatar: '客服头像',
    image: '图片',
    typing: '客服正在输入',
    reply: '快捷回复：',
    offline: '连接已断开，正在重新连接…',
    online: '已连接',
    failed: '暂时连不上客服。请检查网络后点「重试」；情况紧急请直接联系影城工作人员。',
    retry: '重试',
    inputWaiting: '正在连接客服，连接后即可输入',
    agent: '人工客服',
    more: '展开全文',   // not 「查看更多」: that is the bot's own quick reply asking for the next films
    less: '收起',
    bot: '智能客服小星'
  };
  var FAIL_AFTER_MS = 12000;   // the first connection has this long before the patron is told what to do
  var LONG_LINES = 8;          // an answer is never folded to fewer lines than this
  var FOLD_RESERVE_PX = 200;   // room kept on the screen under a folded answer (its quick replies, the question)

  var COLORS = {
    main: '#3b2f8f',        // header, launcher, quick-reply border (white text on it: contrast 10:1)
    userBg: '#3b2f8f',
    userText: '#ffffff',
    botBg: '#ffffff',
    botText: '#1c1b22'
  };

  function messageDelay(text) {
    // The widget shows the typing indication for this long before each bot message.
    var ms = 25 * String(text || '').length;
    return Math.max(350, Math.min(ms, 1200));
  }

  function clock(ts) {
    var d = new Date(ts);
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    var today = new Date();
    var day = d.toDateString() === today.toDateString() ? '' : (d.getMonth() + 1) + '月' + d.getDate() + '日 ';
    return day + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  /* The agent's display name from the message's class (xh-agent-<hex of its UTF-8 bytes>, set by the server). */
  function agentName(node) {
    var m = /(?:^|\s)xh-agent-([0-9a-f]+)(?:\s|$)/.exec(node.className || '');
    if (!m) return '';
    try {
      var bytes = m[1].match(/../g).map(function (h) { return '%' + h; }).join('');
      return decodeURIComponent(bytes);
    } catch (e) { return ''; }
  }

  function setAttr(el, name, value) {
    if (el && el.getAttribute(name) !== value) el.setAttribute(name, value);
  }

  /* The height (px from the top of ``body``) of the last whole line of text that ends within ``budget``:
     a folded answer never shows half of a line (a film's showtimes wrapped over two rows on a phone). */
  function wholeLinesHeight(body, budget) {
    var top = body.getBoundingClientRect().top;
    var range = document.createRange();
    var walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT, null);
    var best = 0, node;
    range.setStart(body, 0);
    while ((node = walker.nextNode())) {
      var text = node.nodeValue, ends = [], at = -1;
      while ((at = text.indexOf('\n', at + 1)) !== -1) ends.push(at);
      ends.push(text.length);
      for (var j = 0; j < ends.length; j++) {
        range.setEnd(node, ends[j]);
        var bottom = range.getBoundingClientRect().bottom - top;
        if (bottom > budget) return best;
        best = Math.max(best, bottom);
      }
    }
    return best;
  }

  /* Fold an answer taller than the screen can show with room to spare (a long price list on a phone) to its
     first whole lines, at least LONG_LINES of them, with 「展开全文」/「收起」. */
  function fold(body, log) {
    var bubble = body.closest('.rw-response');
    if (!bubble || bubble.__xhFold || !body.textContent) return;
    var line = parseFloat(window.getComputedStyle(body).lineHeight) || 24;
    var room = log ? log.clientHeight - FOLD_RESERVE_PX : 0;
    var budget = Math.max(line * LONG_LINES, room);
    bubble.__xhFold = true;   // decided once, on the screen it arrived on
    if (body.scrollHeight <= budget + line * 2) return;   // it fits, or folding would hide only a line or two
    var shown = wholeLinesHeight(body, budget);
    if (shown < line * LONG_LINES) shown = budget;         // one very long paragraph: cut inside it
    var folded = Math.ceil(shown) + 'px';
    bubble.classList.add('xh-long', 'xh-folded');
    body.style.maxHeight = folded;
    var more = document.createElement('button');
    more.type = 'button';
    more.className = 'xh-more';
    more.textContent = TEXT.more;
    more.setAttribute('aria-expanded', 'false');
    more.addEventListener('click', function () {
      var open = body.style.maxHeight === 'none';
      body.style.maxHeight = open ? folded : 'none';
      bubble.classList.toggle('xh-folded', open);
      more.textContent = open ? TEXT.more : TEXT.less;
      more.setAttribute('aria-expanded', open ? 'false' : 'true');
      if (open) bubble.scrollIntoView({ block: 'nearest' });
    });
    bubble.appendChild(more);
  }

  /* Accessibility and localisation fixes applied whenever the widget re-renders. */
  function patch(root, state) {
    var q = function (sel) { return root.querySelectorAll(sel); };
    var i;

    var input = root.querySelector('.rw-new-message');
    if (input) {
      setAttr(input, 'aria-label', TEXT.input);
      setAttr(input, 'lang', 'zh-CN');
      setAttr(input, 'enterkeyhint', 'send');
      if (!input.__xhIme) {
        input.__xhIme = true;
        // React listens on document; stopping the event here keeps an IME's confirming Enter from sending.
        input.addEventListener('keydown', function (e) {
          if (e.isComposing || e.keyCode === 229) e.stopPropagation();
        });
      }
    }
    var send = root.querySelector('.rw-send');
    if (send) { setAttr(send, 'aria-label', TEXT.send); setAttr(send, 'title', TEXT.send); }

    var log = root.querySelector('.rw-messages-container');
    if (log) {
      setAttr(log, 'role', 'log');
      setAttr(log, 'aria-live', 'polite');
      setAttr(log, 'aria-label', TEXT.log);
      setAttr(log, 'tabindex', '0');   // scrollable region reachable by keyboard
    }

    var launchers = q('.rw-launcher');
    for (i = 0; i < launchers.length; i++) {
      var open = !!root.querySelector('.rw-conversation-container');
      setAttr(launchers[i], 'aria-label', open ? TEXT.close : TEXT.open);
      setAttr(launchers[i], 'aria-expanded', open ? 'true' : 'false');
    }
    var closers = q('.rw-close-button');
    for (i = 0; i < closers.length; i++) setAttr(closers[i], 'aria-label', TEXT.close);
    var fulls = q('.rw-toggle-fullscreen-button');
    for (i = 0; i < fulls.length; i++) setAttr(fulls[i], 'aria-label', TEXT.fullscreen);

    var imgs = q('img');
    for (i = 0; i < imgs.length; i++) {
      var img = imgs[i];
      var alt = img.getAttribute('alt');
      if (img.closest('.rw-launcher, .rw-close-button, .rw-send, .rw-toggle-fullscreen-button')) {
        setAttr(img, 'alt', '');                       // the button carries the label
      } else if (alt === 'profile' || alt === 'chat avatar') {
        setAttr(img, 'alt', TEXT.avatar);
      } else if (img.closest('.rw-image-frame, .rw-image-details, .rw-message') && !alt) {
        setAttr(img, 'alt', TEXT.image);
      }
    }
    var svgs = q('.rw-send svg, .rw-launcher svg');
    for (i = 0; i < svgs.length; i++) { setAttr(svgs[i], 'aria-hidden', 'true'); setAttr(svgs[i], 'focusable', 'false'); }

    // Quick replies are <div>s with a click handler: make them buttons for the keyboard and screen readers.
    var replies = q('.rw-reply');
    for (i = 0; i < replies.length; i++) {
      var r = replies[i];
      if (r.tagName === 'A') continue;
      setAttr(r, 'role', 'button');
      setAttr(r, 'tabindex', '0');
      setAttr(r, 'aria-label', TEXT.reply + (r.textContent || '').trim());
      if (!r.__xhKeys) {
        r.__xhKeys = true;
        r.addEventListener('keydown', function (e) {
          if (e.key === 'Enter' || e.key === ' ' || e.key === 'Spacebar') { e.preventDefault(); this.click(); }
        });
      }
    }
    var groups = q('.rw-replies');
    for (i = 0; i < groups.length; i++) setAttr(groups[i], 'role', 'group');

    var links = q('.rw-message a[href]');
    for (i = 0; i < links.length; i++) {
      setAttr(links[i], 'target', '_blank');
      setAttr(links[i], 'rel', 'noopener noreferrer');
    }

    var typing = root.querySelector('.rw-typing-indication');
    if (typing) { setAttr(typing, 'role', 'status'); setAttr(typing, 'aria-label', TEXT.typing); }

    // Long answers fold to what fits the screen (whole lines), with a button to unfold them.
    var bodies = q('.rw-response .rw-message-text');
    for (i = 0; i < bodies.length; i++) fold(bodies[i], log);
    // An agent's messages: the name above the bubble and an avatar with its last character (CSS draws both
    // from these attributes, so React's re-renders leave them alone).
    var agents = q('.xh-agent');
    for (i = 0; i < agents.length; i++) {
      var name = agentName(agents[i]);
      if (!name) continue;
      setAttr(agents[i], 'data-agent', TEXT.agent + ' ' + name);
      var holder = agents[i].closest('.rw-message');
      if (holder) {
        setAttr(holder, 'data-agent-initial', name.slice(-1));
        holder.classList.add('xh-agent-message');
      }
    }

    if (state.status) {
      var connected = state.socket === 'connected';
      if (connected) { state.everConnected = true; state.failed = false; }
      var msg = connected ? '' : state.everConnected ? TEXT.offline : state.failed ? TEXT.failed : TEXT.connecting;
      if (state.status.firstChild === null || state.status.getAttribute('data-text') !== msg) {
        state.status.setAttribute('data-text', msg);
        state.status.textContent = msg;
        if (msg === TEXT.failed) {
          var retry = document.createElement('button');
          retry.type = 'button';
          retry.className = 'xh-retry';
          retry.textContent = TEXT.retry;
          retry.addEventListener('click', function () { window.location.reload(); });
          state.status.appendChild(retry);
        }
      }
      state.status.className = state.statusClass + (connected ? '' : state.failed ? ' xh-failed' : ' xh-connecting');
      root.classList.toggle('xh-disconnected', !connected);
      // Nothing can be sent until the socket is there: the field says so and takes no input.
      if (input) {
        input.disabled = !connected;
        setAttr(input, 'placeholder', connected ? TEXT.hint : TEXT.inputWaiting);
      }
    }
  }

  function watch(root, embedded, socketState) {
    var state = socketState;
    state.status = null;
    state.everConnected = false;
    state.failed = false;
    // A live region for the connection state: a visible bar above the full-page chat (whose widget
    // header, with its own indicator, is hidden), visually hidden next to the launcher.
    state.status = document.createElement('div');
    state.statusClass = embedded ? 'xh-page-status' : 'xh-visually-hidden';
    state.status.className = state.statusClass;
    state.status.setAttribute('role', 'status');
    state.status.setAttribute('aria-live', 'polite');
    root.parentNode.insertBefore(state.status, embedded ? root : root.nextSibling);

    var scheduled = false;
    var run = function () { scheduled = false; patch(root, state); };
    new MutationObserver(function () {
      if (!scheduled) { scheduled = true; (window.requestAnimationFrame || setTimeout)(run); }
    }).observe(root, { childList: true, subtree: true });
    state.refresh = run;
    setTimeout(function () { if (!state.everConnected) { state.failed = true; run(); } }, FAIL_AFTER_MS);
    run();
  }

  /* The socket's own events decide the connection state (the widget's loading bar only hints at it). */
  function socketEvents(state, extra) {
    var events = {};
    var set = function (value) {
      return function () {
        state.socket = value;
        if (value === 'connected') state.failed = false;
        if (state.refresh) state.refresh();
      };
    };
    events.connect = set('connected');
    events.session_confirm = set('connected');
    events.disconnect = set('disconnected');
    events.connect_error = set('disconnected');
    Object.keys(extra).forEach(function (name) {
      var ours = events[name];
      events[name] = ours ? function () { ours.apply(this, arguments); return extra[name].apply(this, arguments); } : extra[name];
    });
    return events;
  }

  function hasConversation() {
    try {
      var saved = JSON.parse(window.localStorage.getItem('chat_session') || 'null');
      return !!(saved && saved.session_id);
    } catch (e) {
      return false;
    }
  }

  function mount(cfg) {
    cfg = cfg || {};
    if (!window.WebChat || typeof window.WebChat.default !== 'function') {
      throw new Error('rasa-webchat bundle (window.WebChat) is not loaded');
    }
    var root = cfg.element;
    if (!root) {
      root = document.createElement('div');
      root.id = 'xinghe-webchat';
      document.body.appendChild(root);
    }
    root.classList.add('xh-webchat');
    if (cfg.embedded) root.classList.add('xh-webchat-page');
    root.setAttribute('lang', 'zh-CN');

    var socketState = { socket: null };
    var props = {
      socketUrl: cfg.socketUrl,
      socketPath: cfg.socketPath || '/socket.io/',
      title: cfg.title || TEXT.title,
      subtitle: cfg.subtitle || TEXT.subtitle,
      inputTextFieldHint: TEXT.hint,
      connectingText: TEXT.connecting,
      initPayload: '/greet',            // a new conversation starts with the welcome and its quick replies
      customData: { language: 'zh' },
      embedded: !!cfg.embedded,
      showCloseButton: !cfg.embedded,
      showFullScreenButton: false,
      hideWhenNotConnected: false,
      displayUnreadCount: true,
      // The launcher on the cinema's pages connects only once the patron opens it, unless a conversation
      // is under way: then it connects at once so replies (an agent's too) arrive while it is closed.
      connectOn: cfg.embedded || hasConversation() ? 'mount' : 'open',
      withRules: false,
      params: { storage: 'local' },
      customMessageDelay: messageDelay,
      mainColor: COLORS.main,
      userBackgroundColor: COLORS.userBg,
      userTextColor: COLORS.userText,
      assistBackgoundColor: COLORS.botBg,  // (sic) the widget's prop name
      assistTextColor: COLORS.botText,
      showMessageDate: function (ts) { return ts ? clock(ts) : ''; },
      onSocketEvent: socketEvents(socketState, cfg.onSocketEvent || {})
    };
    window.WebChat.default(props, root);
    watch(root, !!cfg.embedded, socketState);
    return root;
  }

  window.XingheWebchat = { mount: mount, text: TEXT };
})();
