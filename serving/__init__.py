"""The BentoML go/no-go service, its decision rule, batch scoring and web page."""
