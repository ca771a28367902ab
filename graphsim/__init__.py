"""graphsim: a local simulator of Microsoft Entra (client credentials), Microsoft Graph v1.0
(calendar, delta, subscriptions, change notifications) and Azure Key Vault secrets, over TLS on
loopback, faithful to the documented behaviour including its failures. Dev and test only: it is
never deployed with the Functions app (see .funcignore)."""
