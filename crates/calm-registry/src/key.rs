use calm_client::{BaseUrl, InvalidBaseUrl};

/// What a [`Registry`](crate::Registry) can be asked with: a base URL as a string, or an
/// already parsed [`BaseUrl`].
///
/// ```
/// let registry = calm_registry::Registry::new(|base| base.to_string());
/// let base: calm_registry::BaseUrl = "https://api.example.com".parse()?;
/// assert_eq!(registry.get(&base)?, registry.get("https://api.example.com")?);
/// assert_eq!(registry.get(&String::from("https://api.example.com"))?, "https://api.example.com/");
/// # Ok::<(), calm_client::InvalidBaseUrl>(())
/// ```
pub trait RegistryKey {
    /// The key as given, used to remember spellings already seen.
    fn spelling(&self) -> &str;

    /// The parsed base URL, when the key already is one.
    fn as_base_url(&self) -> Option<&BaseUrl>;

    /// Parses (or clones) the key into a normalized [`BaseUrl`].
    ///
    /// # Errors
    ///
    /// [`InvalidBaseUrl`] if the key is not a valid base URL.
    fn to_base_url(&self) -> Result<BaseUrl, InvalidBaseUrl>;
}

impl RegistryKey for str {
    fn spelling(&self) -> &str {
        self
    }

    fn as_base_url(&self) -> Option<&BaseUrl> {
        None
    }

    fn to_base_url(&self) -> Result<BaseUrl, InvalidBaseUrl> {
        BaseUrl::parse(self)
    }
}

impl RegistryKey for String {
    fn spelling(&self) -> &str {
        self
    }

    fn as_base_url(&self) -> Option<&BaseUrl> {
        None
    }

    fn to_base_url(&self) -> Result<BaseUrl, InvalidBaseUrl> {
        BaseUrl::parse(self)
    }
}

impl RegistryKey for BaseUrl {
    fn spelling(&self) -> &str {
        self.as_str()
    }

    fn as_base_url(&self) -> Option<&BaseUrl> {
        Some(self)
    }

    fn to_base_url(&self) -> Result<BaseUrl, InvalidBaseUrl> {
        Ok(self.clone())
    }
}
