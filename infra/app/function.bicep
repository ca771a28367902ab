// The Flex Consumption (FC1) plan, the Function App (Python 3.11, user-assigned identity,
// identity-based storage) and its app settings. The app settings are ONE object literal,
// `appSettings` below: tests/infra/test_settings_roundtrip.py checks it against the settings the
// code reads (shared/settings.py SETTINGS) in both directions, so keep it a plain literal.
// Flex Consumption owns the runtime: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
// WEBSITE_RUN_FROM_PACKAGE are not allowed as app settings there (functionAppConfig replaces them).

@description('Name of the Function App (also its default host name prefix).')
@minLength(2)
@maxLength(60)
param name string

@description('Name of the Flex Consumption plan.')
@minLength(1)
@maxLength(60)
param planName string

@description('Azure region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app.')
param tags object = {}

@description('Service name in azure.yaml: azd finds the app to deploy to by this tag.')
param serviceName string = 'calsync'

@description('Resource id of the app\'s user-assigned managed identity.')
param identityId string

@description('Client id of the app\'s user-assigned managed identity.')
param identityClientId string

@description('Name of the storage account for the runtime, tables and queues.')
param storageAccountName string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('URI of the Key Vault holding the app registration\'s credential.')
param keyVaultUri string

@description('Comma-separated Entra tenant ids (GUIDs) whose mailboxes may be enrolled.')
@minLength(36)
param tenantIds string

@description('Application (client) id of the Entra app registration.')
@minLength(36)
@maxLength(36)
param clientId string

@description('How the app proves itself to Entra.')
@allowed([
  'secret'
  'certificate'
  'managed_identity'
])
param clientCredentialType string

@description('Key Vault secret name of the client secret.')
@minLength(1)
@maxLength(127)
param clientSecretName string

@description('Key Vault secret name of the client certificate (PEM: private key + certificate).')
@minLength(1)
@maxLength(127)
param clientCertificateName string

@description('Seconds a secret read from Key Vault is cached (a rotated secret is picked up within this time).')
@minValue(0)
@maxValue(86400)
param secretCacheSeconds int

@description('Days the operations log (the log table) is kept; older days are deleted daily.')
@minValue(1)
@maxValue(365)
param logRetentionDays int

@description('Days the change feed (the changes table) keeps each change; older ones are deleted daily.')
@minValue(1)
@maxValue(365)
param changesRetentionDays int

@description('Microsoft Graph endpoint with version.')
param graphBaseUrl string

@description('Token scope for Graph (<resource>/.default); empty: derived from graphBaseUrl.')
param graphScope string

@description('Tenants on Exchange Server (EWS), JSON keyed by tenant id; empty: all Graph.')
param mailboxProviders string

@description('Microsoft Entra authority host.')
param authorityHost string

@description('Most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Spread the plan\'s instances over availability zones (only in regions where Flex Consumption offers it).')
param zoneRedundant bool = false

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing with user names and passwords: azd deploys with an Entra token.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

var publicBaseUrl = 'https://${site.properties.defaultHostName}'

var appSettings = {
  // ---- Read by the app: shared/settings.py SETTINGS (meanings as documented there) ----
  // Comma-separated Entra tenant ids (GUIDs) whose mailboxes may be enrolled.
  TENANT_IDS: tenantIds
  // Application (client) id of the Entra app registration.
  CLIENT_ID: clientId
  // secret | certificate | managed_identity: how the app proves itself to Entra.
  CLIENT_CREDENTIAL_TYPE: clientCredentialType
  // Key Vault secret holding the client secret (CLIENT_CREDENTIAL_TYPE=secret).
  CLIENT_SECRET_NAME: clientSecretName
  // Key Vault secret holding the PEM key + certificate (CLIENT_CREDENTIAL_TYPE=certificate).
  CLIENT_CERTIFICATE_NAME: clientCertificateName
  // The vault the secrets above are read from, with the app's managed identity.
  KEY_VAULT_URL: keyVaultUri
  // A secret rotated in Key Vault is picked up within this many seconds.
  SECRET_CACHE_SECONDS: string(secretCacheSeconds)
  // Days the operations log (notification POSTs, Graph calls) is kept.
  LOG_RETENTION_DAYS: string(logRetentionDays)
  // Days the change feed keeps each change (feed reads, replays); pruned by the daily roll.
  CHANGES_RETENTION_DAYS: string(changesRetentionDays)
  // Seconds a change-feed webhook receiver has to answer one delivery.
  WEBHOOK_TIMEOUT_SECONDS: '5'
  // Days mirrored beyond each side of a mailbox's window: its delta window is recreated weekly.
  WINDOW_MARGIN_DAYS: '7'
  // Days between two safety-net full listings of a mailbox (and at once after a fault).
  SAFETY_NET_DAYS: '7'
  // A quiet mailbox syncs at its first notification (about a second); false: every one waits 3 s.
  LEADING_ROUND: 'true'
  // Graph endpoint (another one for sovereign clouds).
  GRAPH_BASE_URL: graphBaseUrl
  // Token scope for Graph; empty: derived from GRAPH_BASE_URL's host.
  GRAPH_SCOPE: graphScope
  // Entra authority host (another one for sovereign clouds).
  AUTHORITY_HOST: authorityHost
  // Where Graph calls back: PUBLIC_BASE_URL/api/notifications and /api/lifecycle.
  PUBLIC_BASE_URL: publicBaseUrl
  // Which tenants are Exchange Server on premises, reached through EWS (JSON; empty: Graph).
  MAILBOX_PROVIDERS: mailboxProviders
  // Identity-based storage for the host and the app: the account (no connection string, no key),
  AzureWebJobsStorage__accountName: storage.name
  // reached with a managed identity,
  AzureWebJobsStorage__credential: 'managedidentity'
  // namely the app's user-assigned one.
  AzureWebJobsStorage__clientId: identityClientId
  // The user-assigned identity for Key Vault (DefaultAzureCredential) and the federated credential.
  AZURE_CLIENT_ID: identityClientId
  // ---- Read by the host and by the app (shared/telemetry.py exports the app's own) ----
  // Where telemetry goes (identifies the component; not a credential with local auth off).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  // Host and app authenticate to Application Insights as the app's identity (Entra ID, no key).
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

output name string = site.name
output publicBaseUrl string = publicBaseUrl
