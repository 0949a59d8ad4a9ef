//! The transport's proxy and decompression settings on [`ClientBuilder`], passed on to
//! calm's default transport ([`TransportBuilder`](crate::client::transport::TransportBuilder);
//! its [module docs](crate::client::transport) hold the whole story).
//!
//! Like [`add_root_certificate`](ClientBuilder::add_root_certificate), they are used by
//! [`build`](ClientBuilder::build) only: [`build_with`](ClientBuilder::build_with) takes a
//! transport as it is. A later [`transport`](ClientBuilder::transport) call replaces them.

use super::ClientBuilder;

impl ClientBuilder {
    /// Sends every request through the proxy at `url`, replacing the proxy variables of the
    /// environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`).
    ///
    /// `url` is `http://[user:password@]host[:port]`, or `https://…` for TLS to the proxy.
    /// Requests to an `http` API go to the proxy in absolute form with the credentials in
    /// `Proxy-Authorization`; an `https` API is reached through a `CONNECT` tunnel. The
    /// credentials go to the proxy only, never to the API or a redirect target.
    ///
    /// # Errors
    ///
    /// A URL that cannot be used (not a URL, SOCKS or another scheme, a path) makes
    /// [`build`](Self::build) fail with a [`BuildError`](crate::BuildError) of kind
    /// [`Transport`](crate::BuildErrorKind::Transport), whose message never shows the URL.
    ///
    /// ```
    /// use calm::{BuildErrorKind, Client};
    ///
    /// let client = Client::builder("https://api.example.com/v1")
    ///     .proxy("http://user:secret@proxy.internal:3128")
    ///     .build()?;
    /// # drop(client);
    ///
    /// let err = Client::builder("https://api.example.com/v1")
    ///     .proxy("socks5://user:secret@proxy.internal:1080")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), BuildErrorKind::Transport);
    /// assert!(!err.to_string().contains("secret"));
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.transport = self.transport.proxy(url);
        self
    }

    /// Sends requests to an `http` API through the proxy at `url` (whatever
    /// [`proxy`](Self::proxy) says), replacing the environment's proxy variables.
    ///
    /// ```
    /// let client = calm::Client::builder("http://legacy.internal/api")
    ///     .http_proxy("http://proxy.internal:3128")
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn http_proxy(mut self, url: impl Into<String>) -> Self {
        self.transport = self.transport.http_proxy(url);
        self
    }

    /// Sends requests to an `https` API through a `CONNECT` tunnel of the proxy at `url`
    /// (whatever [`proxy`](Self::proxy) says), replacing the environment's proxy variables.
    ///
    /// ```
    /// let client = calm::Client::builder("https://api.example.com/v1")
    ///     .https_proxy("http://proxy.internal:3128")
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn https_proxy(mut self, url: impl Into<String>) -> Self {
        self.transport = self.transport.https_proxy(url);
        self
    }

    /// The destinations that skip the proxy, in `NO_PROXY` form (comma-separated host names
    /// matching themselves and their subdomains, IP addresses, CIDR ranges, or `*`);
    /// replaces `NO_PROXY` when the proxies come from the environment. A redirect to such a
    /// destination goes direct, without the proxy's credentials.
    ///
    /// ```
    /// let client = calm::Client::builder("https://api.example.com/v1")
    ///     .proxy("http://proxy.internal:3128")
    ///     .proxy_bypass("downloads.example.com, 10.0.0.0/8")
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn proxy_bypass(mut self, list: impl Into<String>) -> Self {
        self.transport = self.transport.proxy_bypass(list);
        self
    }

    /// Whether [`build`](Self::build) reads `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and
    /// `NO_PROXY` (upper case first, then lower case) when no proxy is set explicitly
    /// (default on). A proxy from the environment is never used for a loopback API
    /// (`localhost`, `127.0.0.0/8`, `::1`), and a variable that holds an unusable URL makes
    /// `build` fail, naming the variable.
    ///
    /// ```
    /// // The same client on every machine, whatever its environment says.
    /// let client = calm::Client::builder("https://api.example.com/v1")
    ///     .proxy_from_env(false)
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn proxy_from_env(mut self, enabled: bool) -> Self {
        self.transport = self.transport.proxy_from_env(enabled);
        self
    }

    /// No proxy at all: forgets any proxy set before and ignores the environment (reqwest's
    /// `no_proxy()`).
    ///
    /// ```
    /// let client = calm::Client::builder("https://api.example.com/v1")
    ///     .no_proxy()
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn no_proxy(mut self) -> Self {
        self.transport = self.transport.no_proxy();
        self
    }

    /// Whether to ask for compressed responses and decode them (default on): a request
    /// without `Accept-Encoding` is sent with the encodings of the enabled cargo features
    /// (`gzip`, `brotli`, `zstd`, `deflate`, all on by default), and a response in one of
    /// them is decoded as it is read, its `Content-Encoding` and `Content-Length` removed.
    /// Off, nothing is asked for and bodies arrive as sent. A body that cannot be decoded
    /// fails as it is read.
    ///
    /// ```
    /// // Bodies exactly as the server sent them, e.g. to store them compressed.
    /// let client = calm::Client::builder("https://api.example.com/v1")
    ///     .decompression(false)
    ///     .build()?;
    /// # drop(client);
    /// # Ok::<(), calm::BuildError>(())
    /// ```
    pub fn decompression(mut self, enabled: bool) -> Self {
        self.transport = self.transport.decompression(enabled);
        self
    }
}
