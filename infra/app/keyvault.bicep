// The Key Vault that holds the app registration's credential (client secret or certificate).
// RBAC mode (no access policies), soft delete and purge protection on, audit logs to Log
// Analytics. Nothing here writes a secret: the operator stores it (docs/deploy.md), so no secret
// value ever passes through a template, a deployment history or an app setting.

@description('Name of the Key Vault: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the vault.')
param location string

@description('Tags applied to the vault.')
param tags object = {}

@description('Days a deleted vault or secret can be recovered (7-90). Purge protection keeps them for this long.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Resource id of the Log Analytics workspace that receives the vault audit log.')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // As for storage: no virtual network by default, so access is restricted by RBAC.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource vaultAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
