// The app's one identity: a user-assigned managed identity. It reaches Storage, Key Vault and
// Application Insights through role assignments (rbac.bicep) and, when CLIENT_CREDENTIAL_TYPE is
// managed_identity, it is the federated credential of the Entra app registration (docs/deploy.md).
// User-assigned (not system-assigned) so its ids exist before the app and survive a redeploy.

@description('Name of the user-assigned managed identity.')
@minLength(3)
@maxLength(128)
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
