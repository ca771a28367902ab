// Log Analytics and workspace-based Application Insights. Local (key) authentication is off on
// both: the app sends telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// plus the Monitoring Metrics Publisher role in rbac.bicep).

@description('Name of the Log Analytics workspace.')
@minLength(4)
@maxLength(63)
param logAnalyticsName string

@description('Name of the Application Insights component.')
@minLength(1)
@maxLength(255)
param applicationInsightsName string

@description('Azure region of the monitoring resources.')
param location string

@description('Tags applied to the monitoring resources.')
param tags object = {}

@description('Days Log Analytics keeps data (30 is included in the price).')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    retentionInDays: retentionInDays
    sku: {
      name: 'PerGB2018'
    }
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output logAnalyticsId string = logAnalytics.id
output applicationInsightsId string = applicationInsights.id
output applicationInsightsName string = applicationInsights.name
