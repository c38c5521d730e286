"""Home feeds: the feed policy (`manager`), the pure merge (`merge`) and the read path
(`reader`)."""
