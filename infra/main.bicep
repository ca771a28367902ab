// calsync on Azure: one resource group with a Flex Consumption Function App (Python 3.11), its
// storage (identity only, no keys), a user-assigned managed identity, a Key Vault for the app
// registration's credential, Log Analytics and Application Insights. `azd up` deploys it; the
// parameters come from main.parameters.json (azd environment values). docs/deploy.md walks through it.
targetScope = 'subscription'

// ---- azd environment ----

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: names the resource group and seeds the unique resource names.')
param environmentName string

@minLength(1)
@description('Azure region of every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Name of the resource group. Empty: rg-<environmentName>.')
param resourceGroupName string = ''

// ---- The Entra app registration (docs/deploy.md, steps 1-3) ----

@minLength(36)
@description('Required. Comma-separated tenant ids (GUIDs) whose mailboxes may be enrolled, e.g. the tenant of the app registration and every customer tenant that granted admin consent.')
param tenantIds string

@minLength(36)
@maxLength(36)
@description('Required. Application (client) id of the Entra app registration (a GUID).')
param clientId string

@allowed([
  'secret'
  'certificate'
  'managed_identity'
])
@description('How the app proves itself to Entra: secret (client secret in Key Vault), certificate (PEM in Key Vault) or managed_identity (the app\'s identity as a federated credential: no secret at all).')
param clientCredentialType string = 'secret'

@minLength(1)
@maxLength(127)
@description('Key Vault secret name of the client secret (clientCredentialType=secret).')
param clientSecretName string = 'graph-client-secret'

@minLength(1)
@maxLength(127)
@description('Key Vault secret name of the client certificate, PEM with private key and certificate (clientCredentialType=certificate).')
param clientCertificateName string = 'graph-client-certificate'

@minValue(0)
@maxValue(86400)
@description('Seconds a secret read from Key Vault is cached: a rotated secret is picked up within this time.')
param secretCacheSeconds int = 300

@minValue(1)
@maxValue(365)
@description('Days the operations log (notification POSTs received, Graph calls made) is kept.')
param logRetentionDays int = 7

@minValue(1)
@maxValue(365)
@description('Days the change feed (the changes table) keeps each change for feed reads and replays.')
param changesRetentionDays int = 30

@description('Microsoft Graph endpoint with version. Sovereign clouds: https://graph.microsoft.us/v1.0, https://microsoftgraph.chinacloudapi.cn/v1.0.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Token scope for Graph, <resource>/.default. Empty: derived from graphBaseUrl (its scheme and host + /.default), which is right for the public and sovereign clouds.')
param graphScope string = ''

@description('Tenants on Exchange Server on premises (EWS), as a JSON object keyed by tenant id (see docs/deploy.md, "Exchange Server on premises"). Empty: every tenant uses Graph.')
param mailboxProviders string = ''

@description('Microsoft Entra authority host. Sovereign clouds: https://login.microsoftonline.us, https://login.chinacloudapi.cn.')
param authorityHost string = 'https://login.microsoftonline.com'

// ---- Operator and scale ----

@description('Object id of the person (or group, or pipeline) who stores the client secret or certificate: gets Key Vault Secrets Officer on the vault. azd fills in the signed-in user. Empty: nobody.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principal operatorPrincipalId is.')
param operatorPrincipalType string = 'User'

@minValue(1)
@maxValue(1000)
@description('Most instances the Function App may scale out to.')
param maximumInstanceCount int = 100

@allowed([
  512
  2048
  4096
])
@description('Memory of each Function App instance in MB.')
param instanceMemoryMB int = 2048

@description('Spread the Function App\'s instances over availability zones (only in regions where Flex Consumption offers it).')
param zoneRedundant bool = false

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
@description('Replication of the storage account (ZRS needs a region with availability zones).')
param storageSkuName string = 'Standard_ZRS'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-calsync-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-calsync-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-calsync-${resourceToken}'
    applicationInsightsName: 'appi-calsync-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    skuName: storageSkuName
  }
}

module vault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  // The host reads storage with the identity as soon as it starts: grant the roles first.
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: 'plan-calsync-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: vault.outputs.uri
    tenantIds: tenantIds
    clientId: clientId
    clientCredentialType: clientCredentialType
    clientSecretName: clientSecretName
    clientCertificateName: clientCertificateName
    secretCacheSeconds: secretCacheSeconds
    logRetentionDays: logRetentionDays
    changesRetentionDays: changesRetentionDays
    graphBaseUrl: graphBaseUrl
    graphScope: graphScope
    mailboxProviders: mailboxProviders
    authorityHost: authorityHost
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    zoneRedundant: zoneRedundant
  }
}

// ---- Outputs (azd stores them in the environment: `azd env get-values`) ----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
@description('The Function App azd deploys to.')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
@description('Graph change notifications are delivered here (subscription notificationUrl).')
output NOTIFICATION_URL string = '${functionApp.outputs.publicBaseUrl}/api/notifications'
@description('Graph lifecycle notifications are delivered here (subscription lifecycleNotificationUrl).')
output LIFECYCLE_URL string = '${functionApp.outputs.publicBaseUrl}/api/lifecycle'
output PUBLIC_BASE_URL string = functionApp.outputs.publicBaseUrl
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_KEY_VAULT_URL string = vault.outputs.uri
@description('Client id of the app\'s managed identity (AZURE_CLIENT_ID).')
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
@description('Object (principal) id of the app\'s managed identity: the subject of the federated credential.')
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
