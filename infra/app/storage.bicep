// The storage account for the Functions runtime, the app's tables and queues, and the deployment
// package. Reached by managed identity only: shared key access is off, so no connection string
// with a key exists anywhere. TLS 1.2, HTTPS only, no anonymous blob access.

@description('Name of the storage account: 3-24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region of the storage account.')
param location string

@description('Tags applied to the storage account.')
param tags object = {}

@description('Blob container that holds the deployment package of the Flex Consumption app.')
@minLength(3)
@maxLength(63)
param deploymentContainerName string

@description('Replication of the storage account. The mirror can be rebuilt from Graph, so zone redundancy is enough; geo redundancy costs more.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_ZRS'

// The app's tables and queues (shared/names.py TABLES and QUEUES; tests/infra/test_storage_names.py
// keeps the two lists equal). The app also creates any that is missing at start, idempotently;
// provisioning them here means a new deployment has them before its first request.
@description('Tables the app uses: the mirror, its state, the change feed, the operations log, the iCalUId index, webhook subscribers and deliveries, the write records, and the subscription-write budget shared by the hosts.')
param tableNames array = [
  'mailboxes'
  'subscriptions'
  'cursors'
  'events'
  'changes'
  'log'
  'icaluids'
  'webhooks'
  'deliveries'
  'deadletters'
  'writes'
  'pacing'
]

@description('Queues the app uses: sync requests, the change feed, webhook deliveries and queued writes (the host makes the -poison queues).')
param queueNames array = [
  'sync-requests'
  'calendar-changes'
  'webhook-deliveries'
  'calendar-writes'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    // No account keys: every caller (the Functions host, the app, azd deploy) uses Entra ID.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Flex Consumption without a virtual network has no fixed outbound addresses to allow;
      // access is restricted by identity (RBAC) instead. See infra/.checkov.yaml.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for table in tableNames: {
    parent: tableService
    name: table
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queueNames: {
    parent: queueService
    name: queue
  }
]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
